"""The int8 step of the ONNX Runtime GenAI conversion (story_lib/loading.py): the builder's fp32
graph with every constant-weight MatMul quantised by ONNX Runtime's own `quantize_dynamic`:
weights int8 per output channel, activations int8 per tensor at run time. ONNX Runtime fuses
each into DynamicQuantizeMatMul / MatMulIntegerToFloat, which run on MLAS's int8 GEMM kernels
(VNNI/AMX): on SmolLM2-135M, one thread, a 256-token prompt pass took 0.25 CPU-s against 0.55-0.6
for the builder's own int8 (MatMulNBits, accuracy level 4, blocks of 128) and 0.74-0.97 for blocks
of 32, decode was as fast or faster, and perplexity +1.4% vs fp32 (engines.py has the table).

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
