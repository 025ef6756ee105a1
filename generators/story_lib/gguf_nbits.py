"""The GGUF's own quantised weights in ONNX Runtime's MatMulNBits, bit for bit: a conversion variant
that benchmarks/bench_story.py --only-variants measures against the default (not the default).

The builder (story_lib/loading.py) re-quantises the dequantised GGUF, so its int4 is not the GGUF's
Q4_1: a Q4_1 block of 32 weights is w = d*q + m (q in 0..15, fp16 scale d and fp16 minimum m),
and MatMulNBits' integer zero point cannot hold -m/d, which is why the builder's int4 lost 16%
perplexity. Here every Q4_1 matrix becomes MatMulNBits with 4-bit blocks of 32, the GGUF's q and
d, no zero point (MLAS's fastest 4-bit kernel: w = d*(q-8)), and the rest of each weight, m + 8d
per block, is added as a small correction: the activations' sums over each block of 32 (ReduceSum)
times an (K/32 x N) fp32 matrix, d*(q-8) + (m+8d) = d*q + m. The LM head (the tied embedding,
Q8_0 in this GGUF: w = d*q, q int8) becomes 8-bit blocks of 32 with the default zero point 128,
also exact. MatMulNBits also takes float zero points (zp = -m/d), which `float_zero_points=True`
writes instead of the correction; ONNX Runtime 1.32's CPU kernel does not prepack those and
dequantises the whole matrix on every call (matmul_nbits.cc: has_unquantized_zero_point_).
Measured on SmolLM2-135M, one thread (benchmarks/results/story.json, onnx_variants): perplexity
+0.34% over fp32 and prompt KL 0.006 (the default int8: +1.84%, 0.025), decode about the default's
speed, but a 256-token prompt 1.06 CPU-s against the default's 0.64; float zero points: exact
(-0.06%, KL 0.0015) and 3 tokens per CPU second.

The graph (layer norms, attention, rotary caches, pruned LM head) is a builder output used as a
template: its MatMulNBits nodes are re-pointed at the GGUF's tensors. Q and K rows are in the
GGUF's interleaved rotary order (llama.cpp's converter permutes them); they are put back in Hugging
Face order, which the template's attention expects, by whole rows, so blocks stay intact.

Run in a child process (`python -m generators.story_lib.gguf_nbits GGUF TEMPLATE_DIR OUT_DIR`) so
its peak memory stays out of the studio.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

BLOCK = 32
Q4_1_BYTES = 20  # fp16 d, fp16 m, 16 bytes of nibbles
Q8_0_BYTES = 34  # fp16 d, 32 int8
ROLES = {"attn/qkv_proj": ("attn_q", "attn_k", "attn_v"), "attn/o_proj": ("attn_output",),
         "mlp/gate_proj": ("ffn_gate",), "mlp/up_proj": ("ffn_up",), "mlp/down_proj": ("ffn_down",)}


def hf_row_order(rows: int, heads: int) -> Any:
    """Index of the GGUF row that holds each Hugging Face row of a Q or K matrix: llama.cpp's
    converter stores each head's rows as (pairs, 2) where transformers has (2, pairs)."""
    import numpy as np

    head_dim = rows // heads
    r = np.arange(rows)
    h, within = r // head_dim, r % head_dim
    half = head_dim // 2
    return h * head_dim + 2 * (within % half) + within // half


def q4_1(raw: Any) -> tuple[Any, Any, Any]:
    """(packed 4-bit data [N, K/32, 16] in MatMulNBits' order, d [N, K/32], m [N, K/32]) of a Q4_1
    tensor's rows (raw: uint8 [N, K/32*20])."""
    import numpy as np

    n = raw.shape[0]
    blocks = raw.reshape(n, -1, Q4_1_BYTES)
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blocks[..., 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # GGUF: byte j holds weights j and j+16
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # MatMulNBits: 2i low, 2i+1 high
    return packed, d, m


def q8_0(raw: Any) -> tuple[Any, Any]:
    """(uint8 data [N, K/32, 32] = q + 128, d [N, K/32]) of a Q8_0 tensor's rows."""
    import numpy as np

    n = raw.shape[0]
    blocks = raw.reshape(n, -1, Q8_0_BYTES)
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    q = blocks[..., 2:].copy().view(np.int8).astype(np.int16) + 128
    return q.astype(np.uint8), d


class Gguf:
    """The GGUF's tensors by name (raw rows) and the head counts."""

    def __init__(self, path: Path) -> None:
        import gguf

        self.reader = gguf.GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = self._field("general.architecture")
        self.heads = int(self._field(f"{arch}.attention.head_count"))
        self.kv_heads = int(self._field(f"{arch}.attention.head_count_kv"))

    def _field(self, key: str) -> Any:
        f = self.reader.fields[key]
        value = f.parts[f.data[0]]
        return bytes(value).decode() if value.dtype.kind == "u" and value.dtype.itemsize == 1 else value[0]

    def rows(self, name: str) -> tuple[str, Any]:
        """(quant type name, raw uint8 rows [N, bytes]) with Q and K rows in Hugging Face order."""
        t = self.tensors[name]
        raw = t.data
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = self.heads if "attn_q" in name else self.kv_heads
            raw = raw[hf_row_order(raw.shape[0], heads)]
        return t.tensor_type.name, raw


def dequantized(kind: str, raw: Any) -> Any:
    """fp32 [N, K] as this module represents it (tests compare it with gguf's own dequantisation)."""
    import numpy as np

    if kind == "Q4_1":
        packed, d, m = q4_1(raw)
        q = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(*d.shape, BLOCK).astype(np.float32)
        w = d[..., None] * (q - 8) + (m + 8 * d)[..., None]
    elif kind == "Q8_0":
        q, d = q8_0(raw)
        w = d[..., None] * (q.astype(np.float32) - 128)
    else:
        raise ValueError(f"no exact MatMulNBits form for {kind}")
    return w.reshape(raw.shape[0], -1)


def convert(gguf_path: Path, template: Path, out: Path, float_zero_points: bool = False) -> dict[str, Any]:
    """Write `out` (a model folder for ONNX Runtime GenAI): the template folder's graph with its
    MatMulNBits weights replaced by the GGUF's. Returns counts for the record."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    src = Gguf(gguf_path)
    model = onnx.load(str(template / "model.onnx"))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_inits: list[Any] = []
    new_nodes: list[Any] = []
    sums: dict[str, str] = {}  # input name -> its block sums (shared by gate and up, say)
    dropped: set[str] = set()
    counts = {"q4_1": 0, "q8_0": 0}

    def block_sums(x: str, k: int) -> str:
        if x not in sums:
            shape = f"{x}/blocksum_shape_{k}"
            new_inits.append(numpy_helper.from_array(np.array([0, 0, k // BLOCK, BLOCK], np.int64), shape))
            axes = f"{x}/blocksum_axes"
            new_inits.append(numpy_helper.from_array(np.array([-1], np.int64), axes))
            new_nodes.append(helper.make_node("Reshape", [x, shape], [f"{x}/blocks"]))
            new_nodes.append(helper.make_node("ReduceSum", [f"{x}/blocks", axes], [f"{x}/blocksum"], keepdims=0))
            sums[x] = f"{x}/blocksum"
        return sums[x]

    for node in list(graph.node):
        if node.op_type != "MatMulNBits":
            new_nodes.append(node)
            continue
        layer = re.search(r"/layers\.(\d+)/", node.name)
        if node.name.startswith("/lm_head/"):
            names = ("output.weight",) if "output.weight" in src.tensors else ("token_embd.weight",)
        else:
            role = next(r for r in ROLES if f"/{r}/" in node.name)
            names = tuple(f"blk.{layer.group(1)}.{g}.weight" for g in ROLES[role])  # type: ignore[union-attr]
        parts = [src.rows(n) for n in names]
        kinds = {k for k, _ in parts}
        raw = np.concatenate([r for _, r in parts], axis=0)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n = int(attrs["K"]), int(attrs["N"])
        base = node.name.strip("/").replace("/", ".")
        dropped.update(node.input[1:])
        if kinds == {"Q8_0"}:
            q, d = q8_0(raw)
            bits, inputs = 8, [f"{base}.q8", f"{base}.scales"]
            new_inits += [numpy_helper.from_array(q, inputs[0]), numpy_helper.from_array(d.reshape(-1), inputs[1])]
            counts["q8_0"] += 1
        elif kinds == {"Q4_1"}:
            packed, d, m = q4_1(raw)
            bits, inputs = 4, [f"{base}.q4", f"{base}.scales"]
            new_inits += [numpy_helper.from_array(packed, inputs[0]), numpy_helper.from_array(d.reshape(-1), inputs[1])]
            counts["q4_1"] += 1
        else:
            raise ValueError(f"{node.name}: GGUF types {sorted(kinds)} have no exact form here")
        assert raw.shape[0] == n and d.shape[1] * BLOCK == k, (node.name, raw.shape, d.shape, k, n)
        x, y = node.input[0], node.output[0]
        if bits == 4 and float_zero_points:
            zp = np.where(d == 0, 0, -m / np.where(d == 0, 1, d)).astype(np.float32)
            new_inits.append(numpy_helper.from_array(zp.reshape(-1), f"{base}.zero_points"))
            inputs.append(f"{base}.zero_points")
        out_name = f"{y}/uncorrected" if bits == 4 and not float_zero_points else y
        new_nodes.append(helper.make_node("MatMulNBits", [x, *inputs], [out_name], name=node.name,
                                          domain="com.microsoft",
                                          K=k, N=n, bits=bits, block_size=BLOCK,
                                          accuracy_level=int(attrs.get("accuracy_level", 4))))
        if out_name != y:  # + block sums of x times (m + 8d): the part of d*q + m that d*(q-8) leaves out
            corr = f"{base}.block_offsets"
            new_inits.append(numpy_helper.from_array(np.ascontiguousarray((m + 8 * d).T), corr))
            new_nodes.append(helper.make_node("MatMul", [block_sums(x, k), corr], [f"{y}/offsets"]))
            new_nodes.append(helper.make_node("Add", [out_name, f"{y}/offsets"], [y]))
    keep = [i for name, i in inits.items() if name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(keep + new_inits)
    del graph.node[:]
    graph.node.extend(new_nodes)
    out.mkdir(parents=True, exist_ok=True)
    for f in template.iterdir():  # genai_config.json, tokenizer files, chat template
        if f.is_file() and not f.name.startswith("model.onnx") and f.name != "studio_meta.json":
            shutil.copy2(f, out / f.name)
    onnx.save_model(model, str(out / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=1024)
    return counts


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(convert(Path(args[0]), Path(args[1]), Path(args[2]), float_zero_points="--float-zero-points" in sys.argv))
