"""`promptxray retarget`: another span of a saved result's output, from its kept ablations.

A context_cite result keeps the ablations it scored, so another span of the same output
is one small regression away: no model is loaded and nothing is scored again. The
command reads the saved result (`explain --json`), calls `api.retarget` and draws the
new result as `explain` draws one.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from .. import api
from ..errors import InvalidParameterError
from .common import check_at_least, user_errors, write_output


def retarget(
    result: Annotated[
        str,
        typer.Argument(
            metavar="RESULT",
            help="A context_cite result saved with `explain --json FILE`.",
            show_default=False,
        ),
    ],
    span: Annotated[
        str,
        typer.Option(
            "--span",
            metavar="START:END",
            help="Characters START:END of the output to explain (inside the result's target).",
            show_default=False,
        ),
    ],
    top: Annotated[int, typer.Option("--top", help="How many top units to list.")] = 10,
    json_path: Annotated[
        str | None,
        typer.Option(
            "--json", metavar="FILE", help="Also write the result as JSON to FILE ('-' for stdout)."
        ),
    ] = None,
    html_path: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write a standalone HTML page to FILE ('-' for stdout).",
        ),
    ] = None,
) -> None:
    """Explain another span of a saved context_cite result's output, with no forward pass."""
    with user_errors("retarget"):
        check_at_least("--top", top, 0)
        if json_path == "-" and html_path == "-":
            raise InvalidParameterError("Only one of --json and --html can write to stdout (-).")
        attr = api.retarget(result, api.parse_span(span))
        from .. import render

        if "-" not in (json_path, html_path):
            Console().print(render.render_console(attr, top=top))
        if json_path is not None:
            write_output(json_path, attr.to_json(indent=2), "JSON")
        if html_path is not None:
            write_output(html_path, render.render_html(attr, standalone=True, top=top), "HTML")
