"""The `studio` command: ui, list, info, generate, restore, status, taste, train, bench.

Exit codes: 0 success, 1 the job failed (out of memory, cancelled, a model error), 2 bad
arguments or bad input, 3 the generator is unavailable (missing weights, unknown model).
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from generators.base import GeneratorUnavailable, InvalidInput, StudioError

# Trainers of the embedded default models: `studio train NAME [args]` calls main(args).
TRAINERS: dict[str, str] = {
    "music": "training.music.train:main",
    "sketch": "training.sketch.train:main",
    "gan": "training.gan.train:main",
    "image": "training.image.train:main",
}
REPO_ROOT = Path(__file__).resolve().parent.parent


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 itself; keep one clear line
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _studio(args: argparse.Namespace):
    from studio.api import Studio
    from studio.config import Settings

    return Studio(Settings.load(home=args.home, device=args.device))  # None = not given


def _parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes key=value, got {pair!r}")
        if value.startswith("@"):  # long text (a prompt, a story bible) from a file
            try:
                value = Path(value[1:]).read_text()
            except OSError as exc:
                raise UsageError(f"cannot read {value[1:]}: {exc.strerror}") from None
        params[key.strip()] = value
    return params


def cmd_list(args: argparse.Namespace) -> int:
    studio = _studio(args)
    rows = studio.generators()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            state = "ready" if row["available"] else f"unavailable: {row['reason']}"
            print(f"{row['name']:<10} {row['title']:<28} {state}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = _studio(args).describe(args.name)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{info['name']}: {info['title']}\n{info['description']}\n\nparameters:")
    for key, prop in info["params"]["properties"].items():
        bounds = ""
        if "minimum" in prop or "maximum" in prop:
            bounds = f" [{prop.get('minimum', '')}..{prop.get('maximum', '')}]"
        if "enum" in prop:
            bounds = f" {{{', '.join(map(str, prop['enum']))}}}"
        print(f"  {key} = {json.dumps(prop.get('default'))}{bounds}  {prop.get('description', '')}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    params = json.loads(args.params) if args.params else {}
    if not isinstance(params, dict):
        raise UsageError("--params must be a JSON object")
    params.update(_parse_sets(args.set or []))
    if args.best_of is not None:
        return _best_of(args, params)
    studio = _studio(args)
    try:
        job = studio.submit(args.name, params, seed=args.seed, user=args.user, timeout=args.timeout)
        for event in job.events():
            if event.kind == "token" and not args.json:
                sys.stderr.write(str(event.data))
            elif event.kind == "progress" and not args.quiet:
                sys.stderr.write(f"\r[{event.fraction:4.0%}] {event.message[:70]:<70}")
        if not args.quiet:
            sys.stderr.write("\n")
        result = job.result()
    finally:
        studio.close()
    paths = list(result.assets)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        copied = []
        for p in paths:
            copied.append(Path(shutil.copy2(p, out / p.name)))
            sidecar = p.with_name(p.name + ".json")
            if sidecar.exists():
                shutil.copy2(sidecar, out / sidecar.name)
        paths = copied
    if args.json:
        print(json.dumps({"seed": result.seed, "assets": [str(p) for p in paths], "data": result.data,
                          "telemetry": job.telemetry}, indent=1, default=str))
    else:
        print(f"seed {result.seed}")
        for p in paths:
            print(p)
    return 0


def _best_of(args: argparse.Namespace, params: dict[str, Any]) -> int:
    """`generate --best-of N`: N candidates, the best by the user's taste model (studio/taste.py)."""
    studio = _studio(args)
    try:
        out = studio.best_of(args.name, params, n=args.best_of, keep=args.keep, seed=args.seed, user=args.user,
                             taste=args.taste, timeout=args.timeout)
    finally:
        studio.close()
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    t = out["taste"]
    print(f"taste: {'model ' + t['model'] if t['active'] else 'not used'} ({t['reason']})", file=sys.stderr)
    for c in out["keep"]:
        score = "" if c["score"] is None else f"  score {c['score']:+.3f}"
        near = ", ".join(Path(w["path"]).name for w in c["why"][:2])
        print(f"{c['path']}{score}" + (f"  (near liked: {near})" if near else ""))
    return 0


def cmd_taste(args: argparse.Namespace) -> int:
    """What the taste model knows for a user and generator; --reset forgets it (ratings stay stored)."""
    studio = _studio(args)
    try:
        if args.reset:
            stamp = studio.taste.reset(args.user, args.name)
            print(f"taste for {args.name} reset at {stamp}; earlier feedback stays stored but is not used")
            return 0
        status = studio.taste.status(args.user, args.name)
        if status["ready"]:
            status["learned"] = studio.taste.model(args.user, args.name).learned(k=3)
    finally:
        studio.close()
    if args.json:
        print(json.dumps(status, indent=1, default=str))
    else:
        acc = status.get("cv_accuracy")
        print(f"{status['generator']} / {status['user']}: {status['n_ratings']} rating(s), {status['n_votes']} vote(s)"
              + (f"; held-out accuracy {acc:.0%}" if acc is not None else "") + f"\n{status['reason']}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from studio.assets import restore

    restored = restore(args.file)
    print(json.dumps({"generator": restored.generator, "params": restored.params, "seed": restored.seed},
                     indent=1))
    if restored.note:  # e.g. the file was edited after the studio wrote it
        print(f"studio: note: {restored.note}", file=sys.stderr)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch a default model that does not ship in the wheel (today: story's GGUF)."""
    from studio.config import Settings
    from generators.story_lib import fetch, loading

    cache = Settings.load(home=args.home).cache_dir
    fetch.fetch_gguf(loading.cache_root(cache) / loading.GGUF_NAME, log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    """A C2PA-signed copy of a studio PNG/MP4 (studio/c2pa_sign.py)."""
    from studio.c2pa_sign import sign_copy
    from studio.config import Settings

    print(sign_copy(args.file, Settings.load(home=args.home).home / "c2pa"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    studio = _studio(args)
    print(json.dumps(studio.status(), indent=1, default=str))
    studio.close()
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    if args.name not in TRAINERS:
        raise UsageError(f"no trainer named {args.name!r}; trainers: {', '.join(sorted(TRAINERS))}")
    module_name, _, func = TRAINERS[args.name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GeneratorUnavailable(f"the {args.name} trainer cannot be imported: {exc} "
                                   "(run from a source checkout)") from None
    return int(getattr(module, func)(rest) or 0)


def cmd_bench(args: argparse.Namespace, rest: list[str]) -> int:
    folder = REPO_ROOT / "benchmarks"
    names = [args.name] if args.name else sorted(p.stem[len("bench_"):] for p in folder.glob("bench_*.py"))
    if not names:
        raise UsageError("no benchmarks found (run from a source checkout)")
    status = 0
    for name in names:
        script = folder / f"bench_{name}.py"
        if not script.is_file():
            raise UsageError(f"no benchmark named {name!r}")
        status |= subprocess.call([sys.executable, str(script), *rest], cwd=REPO_ROOT)
    return status


def cmd_ui(args: argparse.Namespace) -> int:
    from studio.config import Settings
    from studio.ui.launch import run_ui

    return run_ui(args, Settings.load(home=args.home, device=args.device,  # None = not given
                                      backend=args.backend))


def build_parser(with_ui_options: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="A creator-side generative studio.")
    parser.add_argument("--home", help="studio home folder (outputs, database); default $STUDIO_HOME")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default $STUDIO_DEVICE or auto)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ui = sub.add_parser("ui", help="open the studio in the browser")
    if with_ui_options:  # only when asked for: the UI's module tree is heavier than the rest
        from studio.ui.launch import add_ui_arguments

        add_ui_arguments(ui)
    ui.add_argument("--backend", help="where jobs run: local, ray (a local Ray instance) or ray://host:port "
                    "(a Ray cluster); default $STUDIO_BACKEND or local")
    ui.set_defaults(func=cmd_ui)

    p = sub.add_parser("list", help="list generators and whether they can run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="a generator's parameters")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("generate", help="run a generator and write its outputs")
    p.add_argument("name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a parameter (repeatable; VALUE=@file reads a file)")
    p.add_argument("--params", help="all parameters as one JSON object")
    p.add_argument("--seed", type=int, help="seed (default: random, printed)")
    p.add_argument("--out", help="also copy the outputs (and their sidecars) into this folder")
    p.add_argument("--user", help="user id for the fair queue and provenance")
    p.add_argument("--timeout", type=float, help="seconds before the job is stopped")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--best-of", type=int, metavar="N", help="make N candidates and keep the best by your taste "
                   "model (learned from your ratings; off until you have rated enough)")
    p.add_argument("--keep", type=int, default=1, help="with --best-of: how many to keep (default 1)")
    p.add_argument("--taste", choices=("auto", "on", "off"), default="auto",
                   help="with --best-of: auto = rerank once there is signal, on = require it, off = never")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("taste", help="what your taste model has learned for a generator (or --reset it)")
    p.add_argument("name")
    p.add_argument("--user", help="whose taste (default: the local creator)")
    p.add_argument("--reset", action="store_true", help="stop using the feedback given so far")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_taste)

    p = sub.add_parser("restore", help="print generator, params and seed of a studio output")
    p.add_argument("file")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("sign", help="write a C2PA-signed copy of a studio .png or .mp4 (name.c2pa.png)")
    p.add_argument("file")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("fetch", help="download a default model that is not in the wheel (story)")
    p.add_argument("name", choices=["story"])
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("status", help="device, memory budgets, cache and queue")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("train", help="retrain an embedded default model (extra args go to the trainer)")
    p.add_argument("name")
    p.set_defaults(func=cmd_train, passthrough=True)

    p = sub.add_parser("bench", help="run benchmarks (all, or one by name); JSON under benchmarks/results")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_bench, passthrough=True)
    return parser


GLOBAL_VALUE_OPTIONS = ("--home", "--device")  # the options before the command that take a value


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in `argv`, skipping global options and their values
    (`studio --home X ui`: the command is "ui", not "X")."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(with_ui_options=command_of(argv) == "ui")
    try:
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "passthrough", False):
            raise UsageError(f"unrecognised arguments: {' '.join(rest)}")
        return args.func(args, rest) if getattr(args, "passthrough", False) else args.func(args)
    except UsageError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"studio: error: --params is not valid JSON: {exc.msg}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return 2
    except GeneratorUnavailable as exc:
        print(f"studio: unavailable: {exc}", file=sys.stderr)
        return 3
    except StudioError as exc:
        print(f"studio: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
