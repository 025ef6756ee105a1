"""Compositional pattern-producing networks (Stanley, 2007) with NEAT-style genomes, in numpy.

A CPPN maps pixel coordinates (x, y, r = distance from the centre, and a constant bias) through
a small directed acyclic network whose nodes use varied activations (sin, gauss, tanh, ...) to
three output channels; the picture is that function sampled on a pixel grid, so one genome
renders the same image at any resolution. Genomes follow NEAT (Stanley & Miikkulainen, 2002):
node genes and connection genes, mutated by perturbing weights, adding nodes (splitting a
connection), adding connections and changing activations, and crossed over by aligning genes.
Picbreeder (Secretan et al., 2011) and EndlessForms (Clune & Lipson, 2011) breed images this way.

Genome JSON (all ids are integers; it must stay JSON-serialisable, it travels through the API):

    {"format": "cppn-v1", "id": "3f2a...", "generation": 0, "parents": [],
     "nodes": [{"id": 0, "kind": "input"}, ... {"id": 4, "kind": "output", "act": "sin", "bias": 0.0},
               {"id": 81234, "kind": "hidden", "act": "gauss", "bias": 0.3}],
     "connections": [{"src": 0, "dst": 4, "w": 1.2, "on": true}, ...]}

Inputs are ids 0..3 (x, y, r, bias); outputs 4..6. A hidden node made by splitting the
connection src->dst gets an id derived from that pair, so the same innovation in two lineages
gets the same id and crossover can align them (NEAT's innovation numbers without a server-side
counter). `id` is a hash of the genome's content, so identical genomes have identical ids.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable

import numpy as np

FORMAT = "cppn-v1"
INPUTS: tuple[str, ...] = ("x", "y", "r", "bias")
INPUT_IDS: tuple[int, ...] = (0, 1, 2, 3)
OUTPUT_IDS: tuple[int, ...] = (4, 5, 6)
MAX_NODES = 400
MAX_CONNECTIONS = 2000
MAX_ABS_VALUE = 1000.0  # weights and biases beyond this are refused (they only give noise)
WEIGHT_LIMIT = 6.0  # mutation keeps weights inside +-WEIGHT_LIMIT
ROW_BAND_PIXELS = 1 << 18  # render in row bands of ~262k pixels to bound memory at any size


class GenomeError(ValueError):
    """A genome that is not a valid CPPN; the message says what is wrong."""


def _gauss(v: np.ndarray) -> np.ndarray:
    return np.exp(-2.0 * v * v)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * v) + 1.0)  # overflow-free logistic


# name -> (function, output range) ; range (0, 1) or (-1, 1) maps to a colour channel below
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float] | None]] = {
    "sin": (lambda v: np.sin(np.pi * v), (-1.0, 1.0)),
    "cos": (lambda v: np.cos(np.pi * v), (-1.0, 1.0)),
    "gauss": (_gauss, (0.0, 1.0)),
    "tanh": (np.tanh, (-1.0, 1.0)),
    "sigmoid": (_sigmoid, (0.0, 1.0)),
    "abs": (lambda v: np.minimum(np.abs(v), 1e4), None),
    "identity": (lambda v: np.clip(v, -1e4, 1e4), None),
    "square": (lambda v: np.minimum(v * v, 1e4), None),
    "softsign": (lambda v: v / (1.0 + np.abs(v)), (-1.0, 1.0)),
}
HIDDEN_ACTS: tuple[str, ...] = tuple(ACTIVATIONS)
OUTPUT_ACTS: tuple[str, ...] = ("sin", "cos", "gauss", "tanh", "sigmoid", "softsign")  # bounded


# ---------------------------------------------------------------------------------------------
# Validation and identity
# ---------------------------------------------------------------------------------------------
def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenomeError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or abs(v) > MAX_ABS_VALUE:
        raise GenomeError(f"{what} must be a finite number within +-{MAX_ABS_VALUE:g}, got {value!r}")
    return v


def _int_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenomeError(f"{what} must be a whole number, got {value!r}")
    return int(value)


def normalise(genome: Any) -> dict[str, Any]:
    """Check a genome (e.g. sent back by a UI) and return a clean copy; GenomeError if malformed."""
    if not isinstance(genome, dict):
        raise GenomeError(f"a genome must be a JSON object, got {type(genome).__name__}")
    if genome.get("format", FORMAT) != FORMAT:
        raise GenomeError(f"unknown genome format {genome.get('format')!r}; expected {FORMAT!r}")
    nodes_in, conns_in = genome.get("nodes"), genome.get("connections")
    if not isinstance(nodes_in, list) or not isinstance(conns_in, list):
        raise GenomeError("a genome needs a 'nodes' list and a 'connections' list")
    if len(nodes_in) > MAX_NODES or len(conns_in) > MAX_CONNECTIONS:
        raise GenomeError(f"the genome is too large ({len(nodes_in)} nodes, {len(conns_in)} connections; "
                          f"the limits are {MAX_NODES} and {MAX_CONNECTIONS})")
    nodes: list[dict[str, Any]] = []
    kinds: dict[int, str] = {}
    for i, n in enumerate(nodes_in):
        if not isinstance(n, dict):
            raise GenomeError(f"node {i} must be an object")
        nid = _int_id(n.get("id"), f"node {i} id")
        kind = n.get("kind")
        if kind not in ("input", "hidden", "output"):
            raise GenomeError(f"node {nid} has kind {kind!r}; it must be input, hidden or output")
        if nid in kinds:
            raise GenomeError(f"node id {nid} appears twice")
        kinds[nid] = kind
        if kind == "input":
            nodes.append({"id": nid, "kind": kind})
            continue
        act = n.get("act")
        allowed = OUTPUT_ACTS if kind == "output" else HIDDEN_ACTS
        if act not in allowed:
            raise GenomeError(f"node {nid} has activation {act!r}; {kind} nodes use one of "
                              f"{', '.join(allowed)}")
        nodes.append({"id": nid, "kind": kind, "act": act, "bias": _finite(n.get("bias", 0.0), f"node {nid} bias")})
    if sorted(k for k, v in kinds.items() if v == "input") != list(INPUT_IDS):
        raise GenomeError(f"a genome must have exactly the input nodes {list(INPUT_IDS)} ({', '.join(INPUTS)})")
    if sorted(k for k, v in kinds.items() if v == "output") != list(OUTPUT_IDS):
        raise GenomeError(f"a genome must have exactly the output nodes {list(OUTPUT_IDS)}")
    conns: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    for i, c in enumerate(conns_in):
        if not isinstance(c, dict):
            raise GenomeError(f"connection {i} must be an object")
        src, dst = _int_id(c.get("src"), f"connection {i} src"), _int_id(c.get("dst"), f"connection {i} dst")
        if src not in kinds or dst not in kinds:
            raise GenomeError(f"connection {src}->{dst} refers to a node that does not exist")
        if kinds[dst] == "input":
            raise GenomeError(f"connection {src}->{dst} leads into an input node")
        if kinds[src] == "output":
            raise GenomeError(f"connection {src}->{dst} leaves an output node")
        if (src, dst) in seen:
            raise GenomeError(f"connection {src}->{dst} appears twice")
        seen.add((src, dst))
        on = c.get("on", True)
        if not isinstance(on, bool):
            raise GenomeError(f"connection {src}->{dst} 'on' must be true or false")
        conns.append({"src": src, "dst": dst, "w": _finite(c.get("w"), f"connection {src}->{dst} weight"), "on": on})
    out = {"format": FORMAT, "generation": _int_id(genome.get("generation", 0), "generation"),
           "parents": _parent_list(genome.get("parents", [])), "nodes": nodes, "connections": conns}
    topo_order(out)  # raises on cycles
    out["id"] = genome_id(out)
    return out


def _parent_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and len(p) <= 128 for p in value):
        raise GenomeError("a genome's 'parents' must be a list of genome ids")
    return list(value)


def genome_id(genome: dict[str, Any]) -> str:
    """A content hash (16 hex digits) of the network itself: nodes and connections."""
    body = {"nodes": sorted(genome["nodes"], key=lambda n: n["id"]),
            "connections": sorted(genome["connections"], key=lambda c: (c["src"], c["dst"]))}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_json(genome: dict[str, Any]) -> str:
    return json.dumps(genome, sort_keys=True, separators=(",", ":"))


def topo_order(genome: dict[str, Any]) -> list[int]:
    """Non-input node ids in evaluation order (Kahn's algorithm); GenomeError on a cycle."""
    ids = [n["id"] for n in genome["nodes"]]
    indeg = {i: 0 for i in ids}
    succ: dict[int, list[int]] = {i: [] for i in ids}
    for c in genome["connections"]:
        succ[c["src"]].append(c["dst"])
        indeg[c["dst"]] += 1
    ready = sorted(i for i in ids if indeg[i] == 0)
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in sorted(succ[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
        ready.sort()
    if len(order) != len(ids):
        raise GenomeError("the genome's connections form a cycle; a CPPN must be feed-forward")
    inputs = set(INPUT_IDS)
    return [i for i in order if i not in inputs]


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
SYMMETRIES: tuple[str, ...] = ("none", "mirror-x", "mirror-y", "mirror-xy", "radial-3", "radial-4", "radial-6")
COLORS: tuple[str, ...] = ("hsv", "rgb", "gray")


def coordinates(width: int, height: int, row0: int = 0, row1: int | None = None,
                zoom: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates; the shorter side spans [-1, 1] (divided by `zoom`).

    A pixel's coordinate depends only on its position relative to the image, so rendering at
    3x the size puts the centre pixel of each 3x3 block exactly on the smaller image's pixel.
    """
    row1 = height if row1 is None else row1
    scale = 2.0 / (min(width, height) * zoom)
    xs = (np.arange(width, dtype=np.float64) + 0.5 - width / 2.0) * scale
    ys = (np.arange(row0, row1, dtype=np.float64) + 0.5 - height / 2.0) * scale
    x, y = np.meshgrid(xs, ys)
    return x, y


def apply_symmetry(x: np.ndarray, y: np.ndarray, symmetry: str) -> tuple[np.ndarray, np.ndarray]:
    if symmetry == "none":
        return x, y
    if symmetry == "mirror-x":
        return np.abs(x), y
    if symmetry == "mirror-y":
        return x, np.abs(y)
    if symmetry == "mirror-xy":
        return np.abs(x), np.abs(y)
    if symmetry.startswith("radial-"):  # kaleidoscope: fold the angle into one mirrored wedge
        k = int(symmetry.split("-")[1])
        wedge = 2.0 * np.pi / k
        theta = np.mod(np.arctan2(y, x), wedge)
        theta = np.abs(theta - wedge / 2.0)
        r = np.hypot(x, y)
        return r * np.cos(theta), r * np.sin(theta)
    raise GenomeError(f"unknown symmetry {symmetry!r}; choose one of {', '.join(SYMMETRIES)}")


def evaluate(genome: dict[str, Any], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The network's three outputs at coordinates (x, y), each mapped to [0, 1]: (3, *x.shape)."""
    values: dict[int, np.ndarray] = {0: x.astype(np.float32), 1: y.astype(np.float32),
                                     2: (np.hypot(x, y) * 1.4142135).astype(np.float32) - 1.0,
                                     3: np.ones_like(x, dtype=np.float32)}
    nodes = {n["id"]: n for n in genome["nodes"]}
    incoming: dict[int, list[tuple[int, float]]] = {}
    for c in genome["connections"]:
        if c["on"]:
            incoming.setdefault(c["dst"], []).append((c["src"], c["w"]))
    needed = _ancestors(OUTPUT_IDS, incoming)
    zero = np.zeros_like(values[3])
    for nid in topo_order(genome):
        if nid not in needed:
            continue
        node = nodes[nid]
        total = np.full_like(zero, np.float32(node["bias"]))
        for src, w in incoming.get(nid, ()):
            total += np.float32(w) * values[src]
        fn, _ = ACTIVATIONS[node["act"]]
        values[nid] = fn(total).astype(np.float32, copy=False)
    out = []
    for oid in OUTPUT_IDS:
        lo, hi = ACTIVATIONS[nodes[oid]["act"]][1] or (-1.0, 1.0)
        out.append(np.clip((values[oid] - lo) / (hi - lo), 0.0, 1.0))
    return np.stack(out)


def _ancestors(targets: tuple[int, ...], incoming: dict[int, list[tuple[int, float]]]) -> set[int]:
    seen: set[int] = set()
    stack = list(targets)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(src for src, _ in incoming.get(n, ()))
    return seen


def render(genome: dict[str, Any], width: int, height: int, *, color: str = "hsv",
           symmetry: str = "none", zoom: float = 1.0,
           check: Callable[[float], None] | None = None) -> np.ndarray:
    """An (height, width, 3) uint8 RGB image of the genome, rendered in bounded-memory row bands.

    `check(fraction)` is called between bands (progress / cancellation).
    """
    if color not in COLORS:
        raise GenomeError(f"unknown colour mode {color!r}; choose one of {', '.join(COLORS)}")
    img = np.empty((height, width, 3), dtype=np.uint8)
    band = max(1, ROW_BAND_PIXELS // max(1, width))
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        x, y = coordinates(width, height, r0, r1, zoom)
        x, y = apply_symmetry(x, y, symmetry)
        a, b, c = (np.round(ch * 255.0).astype(np.uint8) for ch in evaluate(genome, x, y))
        if color == "gray":
            img[r0:r1] = a[..., None]
        elif color == "rgb":
            img[r0:r1] = np.stack([a, b, c], axis=-1)
        else:  # Pillow's C HSV -> RGB conversion (8-bit channels)
            from PIL import Image

            hsv = Image.merge("HSV", [Image.fromarray(ch) for ch in (a, b, c)])
            img[r0:r1] = np.asarray(hsv.convert("RGB"))
        if check is not None:
            check(r1 / height)
    return img


# ---------------------------------------------------------------------------------------------
# Variation: random genomes, mutation, crossover
# ---------------------------------------------------------------------------------------------
def _split_id(src: int, dst: int, taken: set[int]) -> int:
    """Deterministic id for the node that splits src->dst (aligned across lineages)."""
    salt = 0
    while True:
        h = int(hashlib.sha256(f"{src}>{dst}#{salt}".encode()).hexdigest()[:8], 16)
        nid = 1000 + h % 1_000_000_000
        if nid not in taken:
            return nid
        salt += 1


def _would_cycle(genome: dict[str, Any], src: int, dst: int) -> bool:
    """True if adding src->dst closes a cycle (dst already reaches src)."""
    succ: dict[int, list[int]] = {}
    for c in genome["connections"]:
        succ.setdefault(c["src"], []).append(c["dst"])
    stack, seen = [dst], set()
    while stack:
        n = stack.pop()
        if n == src:
            return True
        if n in seen:
            continue
        seen.add(n)
        stack.extend(succ.get(n, ()))
    return False


def _new_weight(rng: np.random.Generator, scale: float = 1.5) -> float:
    return float(np.clip(rng.normal(0.0, scale), -WEIGHT_LIMIT, WEIGHT_LIMIT))


def _add_node(genome: dict[str, Any], rng: np.random.Generator) -> bool:
    live = [c for c in genome["connections"] if c["on"]]
    if not live or len(genome["nodes"]) >= MAX_NODES or len(genome["connections"]) + 2 > MAX_CONNECTIONS:
        return False
    conn = live[int(rng.integers(len(live)))]
    nid = _split_id(conn["src"], conn["dst"], {n["id"] for n in genome["nodes"]})
    conn["on"] = False
    genome["nodes"].append({"id": nid, "kind": "hidden", "act": str(rng.choice(HIDDEN_ACTS)), "bias": 0.0})
    genome["connections"].append({"src": conn["src"], "dst": nid, "w": 1.0, "on": True})
    genome["connections"].append({"src": nid, "dst": conn["dst"], "w": conn["w"], "on": True})
    return True


def _add_connection(genome: dict[str, Any], rng: np.random.Generator) -> bool:
    if len(genome["connections"]) >= MAX_CONNECTIONS:
        return False
    nodes = genome["nodes"]
    existing = {(c["src"], c["dst"]) for c in genome["connections"]}
    srcs = [n["id"] for n in nodes if n["kind"] != "output"]
    dsts = [n["id"] for n in nodes if n["kind"] != "input"]
    for _ in range(20):
        s, d = int(rng.choice(srcs)), int(rng.choice(dsts))
        if s != d and (s, d) not in existing and not _would_cycle(genome, s, d):
            genome["connections"].append({"src": s, "dst": d, "w": _new_weight(rng), "on": True})
            return True
    return False


def _change_activation(genome: dict[str, Any], rng: np.random.Generator) -> bool:
    nodes = [n for n in genome["nodes"] if n["kind"] != "input"]
    node = nodes[int(rng.integers(len(nodes)))]
    choices = [a for a in (OUTPUT_ACTS if node["kind"] == "output" else HIDDEN_ACTS) if a != node["act"]]
    node["act"] = str(rng.choice(choices))
    return True


def _perturb(genome: dict[str, Any], rng: np.random.Generator, strength: float) -> bool:
    p, sigma = 0.2 + 0.6 * strength, 0.1 + 0.9 * strength
    changed = False
    for c in genome["connections"]:
        if rng.random() < p:
            c["w"] = float(np.clip(c["w"] + rng.normal(0.0, sigma), -WEIGHT_LIMIT, WEIGHT_LIMIT))
            changed = True
    for n in genome["nodes"]:
        if n["kind"] != "input" and rng.random() < p * 0.5:
            n["bias"] = float(np.clip(n["bias"] + rng.normal(0.0, sigma * 0.5), -WEIGHT_LIMIT, WEIGHT_LIMIT))
            changed = True
    return changed


def _finish(genome: dict[str, Any], parents: list[str], generation: int) -> dict[str, Any]:
    genome["format"] = FORMAT
    genome["parents"] = parents
    genome["generation"] = generation
    genome["nodes"].sort(key=lambda n: n["id"])
    genome["connections"].sort(key=lambda c: (c["src"], c["dst"]))
    for c in genome["connections"]:
        c["w"] = round(float(c["w"]), 6)  # short JSON, exact round trip
    for n in genome["nodes"]:
        if "bias" in n:
            n["bias"] = round(float(n["bias"]), 6)
    genome["id"] = genome_id(genome)
    return {k: genome[k] for k in ("format", "id", "generation", "parents", "nodes", "connections")}


def random_genome(rng: np.random.Generator, complexity: int = 4) -> dict[str, Any]:
    """A fresh genome: every input wired to every output, then `complexity` structural mutations."""
    nodes: list[dict[str, Any]] = [{"id": i, "kind": "input"} for i in INPUT_IDS]
    nodes += [{"id": o, "kind": "output", "act": str(rng.choice(OUTPUT_ACTS)), "bias": 0.0} for o in OUTPUT_IDS]
    conns = [{"src": i, "dst": o, "w": _new_weight(rng), "on": True} for i in INPUT_IDS for o in OUTPUT_IDS]
    genome = {"nodes": nodes, "connections": conns}
    for _ in range(complexity):
        _add_node(genome, rng)
        if rng.random() < 0.5:
            _add_connection(genome, rng)
    return _finish(genome, [], 0)


def mutate(genome: dict[str, Any], rng: np.random.Generator, strength: float = 0.5) -> dict[str, Any]:
    """A mutated copy (same lineage fields; the caller sets parents): always differs from `genome`."""
    child = json.loads(json.dumps({"nodes": genome["nodes"], "connections": genome["connections"]}))
    before = genome_id(genome)
    for _ in range(8):  # retry until the network actually changed
        _perturb(child, rng, strength)
        if rng.random() < 0.1 + 0.4 * strength:
            _add_node(child, rng)
        if rng.random() < 0.15 + 0.45 * strength:
            _add_connection(child, rng)
        if rng.random() < 0.1 + 0.3 * strength:
            _change_activation(child, rng)
        if genome_id(child) != before:
            break
    return child


def crossover(a: dict[str, Any], b: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """NEAT crossover: matching genes from either parent at random, plus B's extra genes half the time.

    A is the primary parent (its structure is kept whole); B's extra connections join only when
    they keep the network acyclic, bringing any nodes they need.
    """
    nodes_a = {n["id"]: n for n in a["nodes"]}
    nodes_b = {n["id"]: n for n in b["nodes"]}
    nodes = {}
    for nid, n in nodes_a.items():
        pick = nodes_b[nid] if nid in nodes_b and n["kind"] != "input" and rng.random() < 0.5 else n
        nodes[nid] = dict(pick, kind=n["kind"])
    conns_b = {(c["src"], c["dst"]): c for c in b["connections"]}
    child: dict[str, Any] = {"nodes": list(nodes.values()), "connections": []}
    for c in a["connections"]:
        other = conns_b.get((c["src"], c["dst"]))
        child["connections"].append(dict(other if other is not None and rng.random() < 0.5 else c))
    have = {(c["src"], c["dst"]) for c in child["connections"]}
    for key, c in sorted(conns_b.items()):
        if key in have or rng.random() >= 0.5 or len(child["connections"]) >= MAX_CONNECTIONS:
            continue
        for nid in key:
            if nid not in nodes:
                if len(nodes) >= MAX_NODES:
                    break
                nodes[nid] = dict(nodes_b[nid])
                child["nodes"].append(nodes[nid])
        if key[0] in nodes and key[1] in nodes and not _would_cycle(child, *key):
            child["connections"].append(dict(c))
    return child


def breed(parents: list[dict[str, Any]], n_children: int, rng: np.random.Generator, *,
          weights: list[float] | None = None, mutation: float = 0.5,
          crossover_rate: float = 0.5) -> list[dict[str, Any]]:
    """Children of the (validated) parents: fitness-proportional picks, crossover, mutation.

    Every child differs from all of its parents and records their ids and its generation.
    """
    if not parents:
        raise GenomeError("breeding needs at least one parent genome")
    p = np.asarray(weights if weights is not None else [1.0] * len(parents), dtype=np.float64)
    p = p / p.sum()
    parent_ids = {g["id"] for g in parents}
    children = []
    for _ in range(n_children):
        ia = int(rng.choice(len(parents), p=p))
        a = parents[ia]
        lineage = [a["id"]]
        if len(parents) > 1 and rng.random() < crossover_rate:
            rest = [i for i in range(len(parents)) if i != ia]
            q = p[rest] / p[rest].sum() if p[rest].sum() > 0 else None
            b = parents[int(rng.choice(rest, p=q))]
            body = crossover(a, b, rng)
            if b["id"] not in lineage:
                lineage.append(b["id"])
        else:
            body = {"nodes": a["nodes"], "connections": a["connections"]}
        child = mutate(body, rng, mutation)
        if genome_id(child) in parent_ids:  # crossover + mutation landed on a parent: vary again
            child = mutate(child, rng, max(mutation, 0.5))
        generation = 1 + max(parents[parent_idx]["generation"] for parent_idx in range(len(parents))
                             if parents[parent_idx]["id"] in lineage)
        children.append(_finish(child, lineage, generation))
    return children
