"""Breeder: interactive evolution of CPPN images (Picbreeder, Secretan et al., 2011; Stanley, 2007).

No training and no weights: each image is a small network of sin/gauss/tanh/... nodes evaluated
at every pixel's (x, y, r) coordinates (see `generators/cppn.py`). The creator sees a grid of
candidates, picks (or rates) parents, and the next generation is bred from them by NEAT-style
crossover and mutation. Genomes are plain JSON in `Result.data["genomes"]`, so a UI or API
client sends the picked ones back in `genomes`; each child records its parents' ids (lineage:
`Result.parents` and the genome's own `parents`). The same genome renders the same picture at
any resolution, so `render` exports a picked candidate at poster size.

numpy and PIL are imported inside functions: importing this module stays instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generators.base import Generator, InvalidInput, Output, Params, Progress, Result, Rng, param

MAX_GRID_PIXELS = 16_777_216  # all candidates together (the grid image) at most 16 MP
MAX_IMAGE_SIDE = 8192

_MODES = ("random", "breed", "render")
_SYMMETRIES = ("none", "mirror-x", "mirror-y", "mirror-xy", "radial-3", "radial-4", "radial-6")
_COLORS = ("hsv", "rgb", "gray")


@dataclass(frozen=True)
class BreederParams(Params):
    mode: str = param("random", "random: a fresh grid; breed: children of the picked genomes; "
                      "render: the one picked genome at full size", choices=_MODES)
    genomes: list[dict[str, Any]] = param(
        default_factory=list, help="picked genomes (JSON objects from a previous result's data.genomes): "
        "the parents for breed, exactly one for render", max_length=16, widget="textarea")
    ratings: list[float] = param(default_factory=list, help="optional score per picked genome (> 0, "
                                 "same order); higher-rated parents have more children", max_length=16)
    rows: int = param(3, "candidate grid rows (random/breed)", min=1, max=6)
    cols: int = param(3, "candidate grid columns (random/breed)", min=1, max=6)
    width: int = param(256, "width in pixels of each candidate, or of the render", min=8, max=MAX_IMAGE_SIDE)
    height: int = param(256, "height in pixels of each candidate, or of the render", min=8, max=MAX_IMAGE_SIDE)
    mutation: float = param(0.5, "how far children stray from their parents (0 = subtle tweaks, "
                            "1 = bold changes)", min=0.0, max=1.0)
    crossover: float = param(0.5, "chance that a child mixes two picked parents (needs 2+ parents)",
                             min=0.0, max=1.0)
    complexity: int = param(4, "hidden nodes grown into each fresh random genome (more = busier images)",
                            min=0, max=30)
    color: str = param("hsv", "how the three outputs become colour: hsv, rgb, or gray (first output only)",
                       choices=_COLORS)
    symmetry: str = param("none", "mirror or kaleidoscope symmetry applied to the coordinates",
                          choices=_SYMMETRIES)
    zoom: float = param(1.0, "magnification of the pattern (2 = twice as close)", min=0.05, max=20.0)

    def validate(self) -> None:
        super().validate()
        if self.mode == "breed" and not self.genomes:
            raise InvalidInput("breeding needs at least one picked genome: pick one or more candidates "
                               "from a grid first (send them in 'genomes')")
        if self.mode == "render" and len(self.genomes) != 1:
            raise InvalidInput(f"render takes exactly one genome, got {len(self.genomes)}")
        if self.ratings:
            if len(self.ratings) != len(self.genomes):
                raise InvalidInput(f"give one rating per picked genome: {len(self.genomes)} genome(s) but "
                                   f"{len(self.ratings)} rating(s)")
            if any(r < 0 for r in self.ratings) or not any(r > 0 for r in self.ratings):
                raise InvalidInput("ratings must be zero or positive, with at least one above zero")
        from generators.image_io import check_size

        if self.mode == "render":
            check_size(self.width, self.height, max_pixels=MAX_GRID_PIXELS, max_side=MAX_IMAGE_SIDE,
                       what="the render")
        else:
            check_size(self.width * self.cols, self.height * self.rows, max_pixels=MAX_GRID_PIXELS,
                       max_side=4 * MAX_IMAGE_SIDE, what=f"the {self.rows}x{self.cols} candidate grid")


class Breeder(Generator):
    name = "breeder"
    Params = BreederParams
    title = "Breeder"
    description = ("Breed abstract images: pick the candidates you like and the next generation is "
                   "grown from them (CPPN + NEAT, as in Picbreeder). Any resolution, no model needed.")
    devices = ("cpu",)
    cpu_threads = 1

    def __init__(self, **load_options: Any) -> None:
        super().__init__(**load_options)
        self._loaded = False

    def load(self, device: Any = None, dtype: Any = None) -> None:
        import numpy  # noqa: F401  (fail early if numpy is missing)

        self._loaded = True
        self.weights_sha256 = None  # no weights: the genome is the model

    def unload(self) -> None:
        self._loaded = False

    def estimate_bytes(self) -> int:
        # Row bands of 2^18 pixels x ~(nodes alive) float32 arrays, plus the output images.
        return 96 * 1024 * 1024

    @classmethod
    def debug(cls) -> "Breeder":
        return cls()

    # ------------------------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        from generators import cppn

        if not isinstance(params, BreederParams):
            raise InvalidInput(f"the breeder takes BreederParams, got {type(params).__name__}")
        params.validate()
        parents = self._parse_genomes(params.genomes)
        progress(0.0, params.mode)
        if params.mode == "render":
            genome = parents[0]
            image = self._render(genome, params, params.width, params.height,
                                 lambda f: progress(0.05 + 0.9 * f, "rendering"))
            out = Output(".png", image, role="image", label=f"genome {genome['id']}",
                         extra={"parameters": self._parameters(genome, params, rng.seed)})
            return Result(outputs=[out], parents=[genome["id"]],
                          data=self._data(params, [genome], parents))
        n = params.rows * params.cols
        if params.mode == "random":
            genomes = [cppn.random_genome(rng.numpy, params.complexity) for _ in range(n)]
        else:
            weights = list(params.ratings) if params.ratings else None
            genomes = cppn.breed(parents, n, rng.numpy, weights=weights, mutation=params.mutation,
                                 crossover_rate=params.crossover)
        outputs: list[Output] = []
        images = []
        for i, genome in enumerate(genomes):
            image = self._render(genome, params, params.width, params.height,
                                 lambda f, i=i: progress(0.05 + 0.85 * (i + f) / n, f"candidate {i + 1}/{n}"))
            images.append(image)
            outputs.append(Output(".png", image, role="image", label=f"candidate {i + 1}",
                                  extra={"parameters": self._parameters(genome, params, rng.seed)}))
        from generators.image_io import a1111_parameters, make_grid

        grid = make_grid(images, cols=params.cols)
        outputs.insert(0, Output(".png", grid, role="grid", label=f"{params.rows}x{params.cols} candidates",
                                 extra={"parameters": a1111_parameters(
                                     f"CPPN {params.mode} grid", seed=rng.seed, size=grid.size,
                                     model="cppn-neat", extra=self._options(params))}))
        progress(1.0, "done")
        return Result(outputs=outputs, data=self._data(params, genomes, parents),
                      parents=[g["id"] for g in parents])

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _parse_genomes(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from generators import cppn

        out = []
        for i, g in enumerate(raw):
            try:
                out.append(cppn.normalise(g))
            except cppn.GenomeError as exc:
                raise InvalidInput(f"picked genome {i + 1} is not a valid CPPN genome: {exc}") from None
        return out

    @staticmethod
    def _render(genome: dict[str, Any], params: BreederParams, width: int, height: int,
                check: Any) -> Any:
        from PIL import Image

        from generators import cppn

        array = cppn.render(genome, width, height, color=params.color, symmetry=params.symmetry,
                            zoom=params.zoom, check=check)
        return Image.fromarray(array)

    @staticmethod
    def _options(params: BreederParams) -> dict[str, Any]:
        return {"Color": params.color, "Symmetry": params.symmetry, "Zoom": params.zoom}

    def _parameters(self, genome: dict[str, Any], params: BreederParams, seed: int) -> str:
        from generators import cppn
        from generators.image_io import a1111_parameters

        extra = {"Genome": genome["id"], "Generation": genome["generation"],
                 "Parents": " ".join(genome["parents"]), **self._options(params),
                 "CPPN genome": cppn.to_json(genome)}
        return a1111_parameters(f"CPPN genome {genome['id']}", seed=seed, size=(params.width, params.height),
                                model="cppn-neat", extra=extra)

    @staticmethod
    def _data(params: BreederParams, genomes: list[dict[str, Any]], parents: list[dict[str, Any]]) -> dict[str, Any]:
        return {"mode": params.mode, "genomes": genomes, "ids": [g["id"] for g in genomes],
                "parent_ids": [g["id"] for g in parents],
                "lineage": {g["id"]: list(g["parents"]) for g in genomes},
                "grid": {"rows": params.rows, "cols": params.cols} if params.mode != "render" else None,
                "color": params.color, "symmetry": params.symmetry, "zoom": params.zoom}
