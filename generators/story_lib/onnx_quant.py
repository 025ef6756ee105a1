"""ONNX Runtime's dynamic int8 quantisation of the builder's fp32 graph: a conversion variant that
benchmarks/bench_story.py --only-variants measures against the default (story_lib/loading.py's
build_onnx runs it with dynamic_int8=True); not the default. Every constant-weight MatMul gets
int8 weights per output channel and activations quantised per tensor at run time, fused by ONNX
Runtime into DynamicQuantizeMatMul / MatMulIntegerToFloat on MLAS's int8 GEMM. On SmolLM2-135M,
one thread: a 256-token prompt pass in 0.26 CPU-s (the default: 0.56), decode 56 tok/CPU-s,
perplexity +1.4% when read token by token; but a prompt pass shares one activation scale across
all its tokens, and the first token's huge activations leave the rest with a few levels: the
next-token distribution after a prompt was 0.6-1.3 nats (KL) from fp32's, the default's 0.01-0.02.

Run in a child process (`python -m generators.story_lib.onnx_quant FP32_DIR OUT_DIR`) so that
its peak memory (the fp32 graph and its int8 copy) stays out of the studio.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path


def quantize(src: Path, dst: Path) -> None:
    """src: a builder output folder at fp32; dst: the same folder with int8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():  # genai_config.json, tokenizer files, chat template
        if f.is_file() and not f.name.startswith("model.onnx"):
            shutil.copy2(f, dst / f.name)
    quantize_dynamic(str(src / "model.onnx"), str(dst / "model.onnx"), op_types_to_quantize=["MatMul"],
                     per_channel=True, weight_type=QuantType.QInt8, use_external_data_format=True,
                     extra_options={"MatMulConstBOnly": True})


if __name__ == "__main__":
    quantize(Path(sys.argv[1]), Path(sys.argv[2]))
