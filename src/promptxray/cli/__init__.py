"""Command line: `promptxray explain | heatmap | methods | serve | evaluate | study | provision
| retarget`.

One module per command group; this one builds the typer `app` from them (the entry
point `promptxray.cli:app` and `python -m promptxray`). The commands call only the API,
the result, the views and the evaluation and study packages; `common` holds what they
share (one-line errors, loading, reading input), `options` the options they share.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .evaluate import evaluate
from .explain import explain, heatmap
from .methods import methods
from .provision import provision
from .retarget import retarget
from .serve import serve
from .study import study_cmd

app = typer.Typer(
    name="promptxray",
    help="See which parts of a prompt drive what a language model writes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"promptxray {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """See which parts of a prompt drive what a language model writes."""


app.command("explain")(explain)
app.command("heatmap")(heatmap)
app.command("methods")(methods)
app.command("provision")(provision)
app.command("serve")(serve)
app.command("evaluate")(evaluate)
app.command("study")(study_cmd)
app.command("retarget")(retarget)

__all__ = ["app"]
