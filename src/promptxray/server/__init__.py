"""The prompt debugger: a local web page over the same pipeline as the API and CLI."""

from __future__ import annotations

import socket
import sqlite3
import sys
from pathlib import Path

from ..errors import InvalidParameterError
from ..model import LanguageModel
from .app import create_app, default_data_dir

__all__ = ["check_port", "create_app", "default_data_dir", "serve"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_port(host: str, port: int) -> None:
    """Fail with a readable message before loading anything if the address is unusable."""
    if not 0 < port < 65536:
        raise InvalidParameterError(f"--port must be between 1 and 65535; got {port}.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidParameterError(f"Cannot use host {host!r}: {exc.strerror}.") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidParameterError(
                f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --port."
            ) from exc


def serve(
    lm: LanguageModel,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path | str | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the page and API until interrupted (binds to localhost unless told otherwise)."""
    import uvicorn

    check_port(host, port)
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    try:
        app = create_app(lm, folder)
    except (OSError, sqlite3.Error) as exc:
        raise InvalidParameterError(f"Cannot keep the history in {folder}: {exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    print(
        f"promptxray: serving {lm.name} at http://{shown}:{port}/ "
        f"(history in {folder}; Ctrl+C stops)",
        file=sys.stderr,
    )
    if host not in _LOOPBACK:
        print(
            f"note: {host} is reachable from other machines; anyone who can reach it can "
            "run the model and read the history.",
            file=sys.stderr,
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level)
