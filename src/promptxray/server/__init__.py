"""The prompt debugger: a local web page over the same pipeline as the API and CLI."""

from __future__ import annotations

import socket
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from ..api import LanguageModel
from ..errors import InvalidParameterError
from .app import JOBS_OUTLIVE_THE_PAGE, create_app, default_data_dir
from .background import serve_in_thread
from .security import is_loopback, open_addresses
from .store import check_data_dir

__all__ = [
    "check_data_dir",
    "check_port",
    "create_app",
    "default_data_dir",
    "serve",
    "serve_in_thread",
]


def check_port(host: str, port: int) -> None:
    """Fail with a readable message before loading anything if the address is unusable.

    The messages name the parameters (`port`, `host`); the CLI names its flags for them.
    """
    if not 0 < port < 65536:
        raise InvalidParameterError(f"port must be between 1 and 65535; got {port}.", param="port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidParameterError(
            f"Cannot use host {host!r}: {exc.strerror}.", param="host"
        ) from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidParameterError(
                f"Cannot listen on {host}:{port} ({exc.strerror}); pick another port.", param="port"
            ) from exc


def serve(
    lm: LanguageModel,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path | str | None = None,
    log_level: str = "warning",
    allowed_hosts: Sequence[str] = (),
    token: str | None = None,
) -> None:
    """Serve the page and API until interrupted (binds to localhost unless told otherwise).

    `allowed_hosts` are extra Host names to answer to (behind a proxy, or a machine
    name); `token` is the access token every /api request must carry. A
    non-loopback `host` always needs one: without `token` a fresh one is made and
    printed with the address to open, as Jupyter does.
    """
    import uvicorn

    check_port(host, port)
    folder = check_data_dir(data_dir if data_dir is not None else default_data_dir())
    try:
        app = create_app(lm, folder, host=host, allowed_hosts=allowed_hosts, token=token)
    except (OSError, sqlite3.Error) as exc:
        raise InvalidParameterError(
            f"Cannot keep the history in {folder}: {exc}", param="data_dir"
        ) from exc
    print(start_message(lm.name, host, port, folder, app.state.token), file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def start_message(model: str, host: str, port: int, folder: Path, token: str | None) -> str:
    """What `serve` prints: the addresses to open (with the token), history, job policy.

    Every address printed opens the page as printed: a wildcard bind (0.0.0.0) is
    shown as this machine's name and addresses, never as 0.0.0.0.
    """
    query = f"?token={quote(token)}" if token is not None else ""
    urls = [url + query for url in open_addresses(host, port)]
    lines = [f"promptxray: serving {model} at {urls[0]}"]
    lines += [f"  also at {url}" for url in urls[1:]]
    lines.append(f"  history in {folder}; {JOBS_OUTLIVE_THE_PAGE.lower()} Ctrl+C stops.")
    if not is_loopback(host):
        lines.append(
            f"  note: {host} is reachable from other machines; the API answers only "
            "requests that carry the access token in the address above. Reached through "
            "another name (a proxy, a DNS alias)? Start with --allowed-host NAME."
        )
    return "\n".join(lines)
