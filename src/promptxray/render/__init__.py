"""Views of an `Attribution`: terminal (rich), HTML, heatmap picture.

The heatmap imports matplotlib only when drawn, so the console and HTML views
(which notebooks and rich show through `Attribution._repr_html_` and `__rich__`,
attached here by `notebook.attach_display_hooks`) stay quick to import.
"""

from .console import render_console
from .heatmap import heatmap_figure, save_heatmap
from .html import render_html
from .notebook import attach_display_hooks

attach_display_hooks()

__all__ = ["heatmap_figure", "render_console", "render_html", "save_heatmap"]
