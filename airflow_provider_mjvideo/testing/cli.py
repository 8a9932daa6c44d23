"""``mjvideo-emulator``: run the Midjourney video API emulator from a shell.

Example::

    $ mjvideo-emulator --port 8080 --duration 5
    Midjourney video API emulator listening on http://127.0.0.1:8080
    AIRFLOW_CONN_MIDJOURNEY_DEFAULT='{"conn_type": "midjourney", ...}'

The second line can be pasted after ``export``. The server runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from airflow_provider_mjvideo.testing.emulator import (
    AUTH_STYLES,
    FLAVORS,
    URL_SHAPES,
    EmulatorConfig,
    MidjourneyEmulator,
)


def _loopback_host(value: str) -> str:
    """argparse type: accept only loopback hosts."""
    if value.lower() == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(value).is_loopback:
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{value!r} is not a loopback address (the emulator serves locally only)")


def _non_negative(value: str) -> float:
    """argparse type: a float >= 0."""
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="mjvideo-emulator",
        description="Serve a local emulator of midjourney-proxy style video APIs (no network, no real key).",
    )
    parser.add_argument("--host", type=_loopback_host, default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks a free one")
    parser.add_argument("--api-key", default="emulator-key", help="API key clients must send")
    parser.add_argument("--auth-style", choices=AUTH_STYLES, default="bearer", help="auth header demanded")
    parser.add_argument("--duration", type=_non_negative, default=10.0, help="seconds from submit to SUCCESS")
    parser.add_argument("--flavor", choices=FLAVORS, default="trueai", help="server family to imitate")
    parser.add_argument("--url-shape", choices=URL_SHAPES, default="objects", help="where clip URLs appear")
    parser.add_argument("--path-prefix", default="", help="base path of the API, e.g. /api")
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Run the emulator until Ctrl-C, SIGTERM or ``stop`` is set.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).
        stop: Event that ends serving when set (for embedding and tests).
        out: Where to print the URL and connection line (default stdout).

    Returns:
        The process exit code (0).
    """
    args = build_parser().parse_args(argv)
    out = out if out is not None else sys.stdout
    config = EmulatorConfig(
        api_key=args.api_key,
        auth_style=args.auth_style,
        flavor=args.flavor,
        video_duration=args.duration,
        url_shape=args.url_shape,
        path_prefix=args.path_prefix,
    )
    stop = stop if stop is not None else threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def _on_sigterm(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    emulator = MidjourneyEmulator(config, host=args.host, port=args.port).start()
    try:
        print(f"Midjourney video API emulator listening on {emulator.url}", file=out, flush=True)
        print(f"AIRFLOW_CONN_MIDJOURNEY_DEFAULT={shlex.quote(emulator.connection_json())}", file=out, flush=True)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
