"""`promptxray provision`: unpack the default model into the cache once."""

from __future__ import annotations

import typer

from .. import api
from .common import err_console, user_errors


def provision() -> None:
    """Unpack the default model into the cache once (later loads take under a second)."""
    with user_errors("provision"):
        with err_console().status("Preparing the default model...") as status:
            path = api.provision_default_model(progress=status.update)
        typer.echo(str(path))
