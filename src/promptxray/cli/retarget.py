"""`promptxray retarget`: another span of a saved result's output, from its kept ablations.

A context_cite result keeps the ablations it scored, so another span of the same output
is one small regression away: no model is loaded and nothing is scored again. The
command reads the saved result (`explain --json`), calls `api.retarget` and draws the
new result as `explain` draws one.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import api
from .common import check_result_outputs, show_result, user_errors
from .options import HtmlOutOpt, JsonOutOpt, TopOpt


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
    top: TopOpt = 10,
    json_path: JsonOutOpt = None,
    html_path: HtmlOutOpt = None,
) -> None:
    """Explain another span of a saved context_cite result's output, with no forward pass."""
    with user_errors("retarget"):
        check_result_outputs(top, json_path, html_path)
        attr = api.retarget(result, api.parse_span(span))
        show_result(attr, top, json_path, html_path)
