"""`studio ui`: command-line options and the run loop of the browser studio.

The CLI (`studio/cli.py`) calls `add_ui_arguments(parser)` and `run_ui(args, settings)`;
`python -m studio.ui.launch` does the same on its own. Exit codes: 0 after a clean stop,
2 when the studio refuses to start as asked (no auth for an exposed server, no share link,
a bad auth file, the port taken).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any, Sequence

DEFAULT_SHARE_TIMEOUT_S = 12.0  # the whole share attempt, so `--share` ends in under 15 s
GRADIO_SHARE_API = "api.gradio.app:443"  # where Gradio asks for a tunnel (gradio.networking)


class LaunchError(Exception):
    """The studio will not start as asked (unsafe exposure, no share link, port taken)."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, share: bool, auth: Any, insecure: bool) -> None:
    """Refuse to put the studio where others can reach it without a password."""
    if auth or insecure:
        return
    if share:
        raise LaunchError("refusing to create a public share link without a password: add --auth USER:PASS "
                          "(or --auth-file FILE), or --insecure if you really mean it")
    if not is_loopback(host):
        raise LaunchError(f"refusing to listen on {host} (reachable from other machines) without a password: "
                          "add --auth USER:PASS (or --auth-file FILE), or --insecure if you really mean it")


def probe_share_server(address: str, timeout: float) -> None:
    """Fail at once (not after Gradio's 30 s HTTP timeouts) when the tunnel server is unreachable.

    The name lookup runs in a helper thread too, so a resolver that never answers cannot hang us.
    """
    import threading

    host, _, port = address.rpartition(":")
    box: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                pass
        except (OSError, ValueError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=connect, name="studio-share-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    problem = box.get("error") or (f"no answer within {timeout:.0f} s" if thread.is_alive() else None)
    if problem is not None:
        raise LaunchError(f"could not create a share link: the share server {address} cannot be reached "
                          f"({problem}). The studio did not start. Run it without --share (it is then only "
                          "on this machine), or check the internet connection.")


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None,
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860 or $STUDIO_PORT)")
    parser.add_argument("--share", action="store_true",
                        help="ask Gradio for a public share link (needs --auth, and the internet)")
    parser.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                        help="require this login (repeat for more users)")
    parser.add_argument("--auth-file", metavar="FILE",
                        help="file of USER:PASS lines (blank lines and # comments ignored)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow --share or a non-loopback --host without a password")
    parser.add_argument("--share-timeout", type=float, default=None, metavar="SECONDS",
                        help="give up on the share link after this long (default 12)")
    parser.add_argument("--share-server", default=None, metavar="HOST:PORT",
                        help="a self-hosted FRP share server instead of Gradio's")


def parse_auth(pairs: Sequence[str], auth_file: str | None = None) -> list[tuple[str, str]]:
    """USER:PASS strings (and lines of an auth file) -> Gradio's list of (user, password)."""
    from generators.base import InvalidInput

    lines = list(pairs)
    if auth_file:
        try:
            text = Path(auth_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the auth file {auth_file}: {exc.strerror}") from None
        lines += [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]
    out: list[tuple[str, str]] = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise InvalidInput("each login must look like USER:PASS with neither part empty")
        out.append((user.strip(), password))
    return out


def run_ui(args: argparse.Namespace, settings: Any) -> int:
    """Start the studio UI with `settings`; block until Ctrl-C. Returns the exit code."""
    from generators.base import InvalidInput

    try:
        auth = parse_auth(getattr(args, "auth", None) or [], getattr(args, "auth_file", None))
        share = bool(getattr(args, "share", False))
        check_exposure(getattr(args, "host", None) or settings.host, share, auth,
                       bool(getattr(args, "insecure", False)))
        if share:  # before the slow imports: no internet means a clear error in seconds
            server = getattr(args, "share_server", None) or os.environ.get("GRADIO_SHARE_SERVER_ADDRESS")
            probe_share_server(server or GRADIO_SHARE_API, timeout=5)
    except (InvalidInput, LaunchError) as exc:
        print(f"studio ui: {exc}", file=sys.stderr, flush=True)
        return 2

    from studio.api import Studio
    from studio.ui.app import launch

    studio = Studio(settings)
    try:
        demo = launch(studio, host=getattr(args, "host", None), port=getattr(args, "port", None),
                      share=bool(getattr(args, "share", False)), auth=auth or None,
                      insecure=bool(getattr(args, "insecure", False)), block=False,
                      share_timeout=getattr(args, "share_timeout", None) or DEFAULT_SHARE_TIMEOUT_S,
                      share_server=getattr(args, "share_server", None))
        # Model libraries load only once a browser has drawn the page: on a 2-core machine an
        # import thread beside the app build and first render (same GIL) delays it by seconds.
        demo.studio_context.when_painted(studio.session.warm_imports)
        try:
            demo.block_thread()
        finally:
            demo.close()
    except LaunchError as exc:
        print(f"studio ui: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        studio.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from studio.config import Settings

    parser = argparse.ArgumentParser(prog="studio ui", description="Open the studio in the browser.")
    parser.add_argument("--home", help="studio home folder (outputs, database); default $STUDIO_HOME")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    add_ui_arguments(parser)
    args = parser.parse_args(argv)
    return run_ui(args, Settings.load(home=args.home, device=args.device))  # None = not given


if __name__ == "__main__":
    sys.exit(main())
