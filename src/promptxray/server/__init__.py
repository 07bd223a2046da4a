"""The prompt debugger: a local web page over the same pipeline as the API and CLI."""

from __future__ import annotations

from pathlib import Path

from ..model import LanguageModel
from .app import create_app, default_data_dir

__all__ = ["create_app", "default_data_dir", "serve"]


def serve(
    lm: LanguageModel,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path | str | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the page and API until interrupted (binds to localhost unless told otherwise)."""
    import uvicorn

    uvicorn.run(create_app(lm, data_dir), host=host, port=port, log_level=log_level)
