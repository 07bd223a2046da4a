"""Notebook and rich display of a result, attached by the views.

Jupyter calls `_repr_html_` and rich calls `__rich__` on the object shown. The result
(`Attribution`) must not import its views (layers look down), so the views attach these
two hooks to it when the view package is imported, which `import promptxray` does.
"""

from __future__ import annotations

from rich.console import RenderableType

from ..attribution import Attribution
from .console import render_console
from .html import render_html


def _repr_html_(attr: Attribution) -> str:
    return render_html(attr)


def __rich__(attr: Attribution) -> RenderableType:  # noqa: N807 (rich's protocol name)
    return render_console(attr)


def attach_display_hooks() -> None:
    """Give `Attribution` its notebook (HTML) and terminal (rich) display."""
    Attribution._repr_html_ = _repr_html_  # type: ignore[attr-defined]
    Attribution.__rich__ = __rich__  # type: ignore[attr-defined]
