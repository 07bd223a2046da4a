"""`promptxray serve`: the prompt debugger web page on a local port."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from . import common
from .common import err_console, user_errors
from .options import DeviceOpt, DtypeOpt, ModelOpt


def serve(
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind; the default is reachable from this machine only. With "
            "0.0.0.0 other machines reach it by this machine's names and addresses (printed, "
            "with the access token).",
        ),
    ] = "127.0.0.1",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Where the run history is kept (default: your user data folder).",
            show_default=False,
        ),
    ] = None,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Another Host name to answer to (a name behind a proxy or a DNS alias; this "
            "machine's own names need none); repeatable.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Access token every API request must carry (made and printed for you when "
            "--host is not local).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open the prompt debugger web page: generate, explain, mask and regenerate, history."""
    with user_errors("serve"):
        from .. import server

        # Everything that can fail without the model fails before it loads.
        server.check_port(host, port)
        server.check_data_dir(data_dir if data_dir is not None else server.default_data_dir())
        api.resolve_placement(device, dtype)
        with err_console().status("Loading the model...") as status:
            lm = common.load_lm(model, progress=status.update, device=device, dtype=dtype)
        server.serve(
            lm,
            host=host,
            port=port,
            data_dir=data_dir,
            allowed_hosts=allowed_hosts or (),
            token=token,
        )
