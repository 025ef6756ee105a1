"""story_lib/gguf_nbits.py: a GGUF's Q4_1 / Q8_0 weights in MatMulNBits, exactly.

A tiny GGUF is written with the gguf package's own quantiser, a one-node template graph is
converted, and ONNX Runtime's output is compared with x @ (gguf's own dequantisation).T.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from generators.story_lib import gguf_nbits  # noqa: E402

K, N = 96, 40  # three blocks of 32 along K


def _llama_cpp_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf.py does to Q and K rows (LlamaModel.permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_rows_go_back_to_hugging_face_order() -> None:
    hf = np.arange(12 * 3, dtype=np.float32).reshape(12, 3)  # 3 heads of 4 rows
    assert np.array_equal(_llama_cpp_permute(hf, 3)[gguf_nbits.hf_row_order(12, 3)], hf)


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
def test_unpacking_matches_gguf_dequantisation(kind: str) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (N, K)).astype(np.float32) + rng.normal(0, 0.02, (N, 1)).astype(np.float32)
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    raw = gguf.quants.quantize(w, qtype)
    ref = gguf.quants.dequantize(raw, qtype)
    assert np.abs(gguf_nbits.dequantized(kind, raw) - ref).max() <= 1e-6 * np.abs(ref).max()


def _tiny(tmp: Path, kind: str) -> tuple[Path, Path, np.ndarray]:
    """(a one-tensor GGUF, a template folder with one MatMulNBits node, the fp32 weights it holds)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = (rng.normal(0, 0.05, (N, K)) + rng.normal(0.03, 0.02, (N, 1))).astype(np.float32)  # offsets: m != 0
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    raw = gguf.quants.quantize(w, qtype)
    path = tmp / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_tensor("blk.0.ffn_down.weight", raw, raw_shape=raw.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    template = tmp / "template"
    template.mkdir()
    q8 = numpy_helper.from_array(np.full((N, K // 32, 32), 128, np.uint8), "w_q8")
    scales = numpy_helper.from_array(np.ones(N * K // 32, np.float32), "w_scales")
    node = helper.make_node("MatMulNBits", ["x", "w_q8", "w_scales"], ["y"], domain="com.microsoft",
                            name="/model/layers.0/mlp/down_proj/MatMul_Q8", K=K, N=N, bits=8, block_size=32,
                            accuracy_level=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, N])],
                              initializer=[q8, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    onnx.save_model(model, str(template / "model.onnx"))
    (template / "genai_config.json").write_text("{}")
    return path, template, gguf.quants.dequantize(raw, qtype)


@pytest.mark.parametrize("kind,float_zp", [("Q4_1", False), ("Q4_1", True), ("Q8_0", False)])
def test_converted_graph_computes_with_the_gguf_weights(tmp_path: Path, kind: str, float_zp: bool) -> None:
    path, template, w = _tiny(tmp_path, kind)
    out = tmp_path / "out"
    counts = gguf_nbits.convert(path, template, out, float_zero_points=float_zp)
    assert counts == {"q4_1": int(kind == "Q4_1"), "q8_0": int(kind == "Q8_0")}
    assert (out / "genai_config.json").is_file() and (out / "model.onnx.data").is_file()
    x = np.random.default_rng(2).normal(0, 1, (1, 5, K)).astype(np.float32)  # a 5-token prompt
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": x})[0]
    ref = x @ w.T
    # accuracy level 1 (the template's): fp32 arithmetic, so only rounding separates the two
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()


def test_a_type_without_an_exact_form_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no exact MatMulNBits form for Q5_0"):
        gguf_nbits.dequantized("Q5_0", np.zeros((1, 22), np.uint8))
