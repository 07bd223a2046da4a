"""Views of an `Attribution`: terminal (rich), HTML, heatmap picture.

The heatmap imports matplotlib only when drawn, so the console and HTML views
(used by `Attribution.__rich__` and `_repr_html_`) stay quick to import.
"""

from .console import render_console
from .heatmap import heatmap_figure, save_heatmap
from .html import render_html

__all__ = ["heatmap_figure", "render_console", "render_html", "save_heatmap"]
