"""`promptxray methods [NAME]`: what --method accepts, and one method's parameters.

Both print plain lines that fit the terminal (80 columns included): the list gives a
method two lines (name, family, how its scores group; a one-line summary), NAME its
whole description and each parameter with its type, default, range, help and flag.
"""

from __future__ import annotations

import textwrap
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from .. import api
from ..errors import UnknownMethodError
from .common import flag_for, user_errors

# How a method's token scores become a coarser unit's score, by its aggregation rule.
RULES = {
    "sum": "tokens; groups sum",
    "norm": "tokens; groups by norm",
    "fixed": "masked units only",
}
NAME_WIDTH = max(len(name) for name in api.METHODS) + 2
FAMILY_WIDTH = 14


def describe_rule(name: str) -> str:
    """'tokens; groups sum; signed': what a method's scores are and how they regroup."""
    spec = api.METHODS[name]
    return RULES[str(spec.aggregation)] + ("; signed" if spec.signed else "; unsigned")


def first_clause(description: str) -> str:
    """The description up to its first ';' or ':' outside parentheses (a method's one-line
    summary), so "embedding (signed; groups sum)" is not cut inside its bracket."""
    depth = 0
    for i, char in enumerate(description):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ";:" and description[i + 1 : i + 2] == " " and i > 0:
            return description[:i].rstrip(".")
    return description.rstrip(".")


def list_lines(width: int) -> list[Text]:
    """Two lines a method, in name order, none wider than `width`."""
    lines = [
        Text("Methods for --method; `promptxray methods NAME` shows one's parameters."),
        Text(""),
    ]
    for name in sorted(api.METHODS):
        spec = api.METHODS[name]
        head = Text(name.ljust(NAME_WIDTH), style="bold")
        head.append(str(spec.family).ljust(FAMILY_WIDTH))
        head.append(describe_rule(name), style="dim")
        summary = textwrap.shorten(first_clause(spec.description), width - 4, placeholder=" ...")
        lines += [head, Text("    " + summary)]
    return lines


def detail_lines(name: str, width: int) -> list[Text]:
    """One method: its family and rule, its description, then every parameter with the
    flag `explain` sets it by."""
    if name not in api.METHODS:
        raise UnknownMethodError(
            f"Unknown method {name!r}; choose one of {', '.join(sorted(api.METHODS))}."
        )
    spec = api.METHODS[name]
    lines = [Text.assemble((name, "bold"), f" ({spec.family}; {describe_rule(name)})")]
    lines += [Text(line) for line in textwrap.wrap(spec.description, width)]
    infos = spec.param_info()
    lines += [Text(""), Text("Parameters:" if infos else "Parameters: none.")]
    for info in infos:
        summary, flag = info.summary(), flag_for("explain", info.name) or ""
        if len(summary) + len(flag) + 4 <= width:
            lines.append(Text.assemble("  ", (summary, "bold"), "  ", (flag, "dim")))
        else:
            lines += [Text.assemble("  ", (summary, "bold")), Text("    " + flag, style="dim")]
        indent = " " * 6
        wrapped = textwrap.wrap(
            info.help,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
        lines += [Text(line) for line in wrapped]
    return lines


def methods(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="A method: show its description and parameters.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the attribution methods --method takes; with NAME, that method's parameters."""
    with user_errors("methods"):
        console = Console(highlight=False)
        width = min(console.width, 100)
        lines = list_lines(width) if name is None else detail_lines(name, width)
        for line in lines:
            console.print(line, overflow="fold")
