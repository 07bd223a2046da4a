"""Loading: a name, id, folder or `.gguf` becomes a `LanguageModel` on a checked device.

Everything that can be refused without the weights (an unusable device, a dtype
we do not know, a path that does not exist) is refused before loading starts, and
every failure of the load itself is one `ModelLoadError` line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .devices import resolve_placement
from .language_model import LanguageModel
from .provision import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    provision_default_model,
    provision_gguf,
    provision_packaged_model,
)


def load_model(
    name_or_path: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    progress: Callable[[str], None] | None = None,
) -> LanguageModel:
    """Load the default model, a packaged one, a Hugging Face id, a local folder or a .gguf.

    `device`: auto (first GPU, else CPU), cpu, cuda, cuda:N, mps. `dtype`: auto
    (bfloat16 on a GPU that has it, else float32), float32, bfloat16, float16.
    """
    placement = resolve_placement(device, dtype)
    source, display = _source(name_or_path, progress)
    if progress:
        progress(f"Loading {display} on {placement.describe()}...")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=placement.dtype)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party load is one line
        raise ModelLoadError(f"Could not load model {name_or_path!r}: {_first_line(exc)}") from exc
    model.to(placement.device)
    model.eval()
    return LanguageModel(model, tokenizer, name=display, placement=placement)


def _source(name_or_path: str | None, progress: Callable[[str], None] | None) -> tuple[str, str]:
    """Where transformers should read the model from, and the name to show."""
    if name_or_path in (None, "", DEFAULT_MODEL, f"HuggingFaceTB/{DEFAULT_MODEL}"):
        if name_or_path == f"HuggingFaceTB/{DEFAULT_MODEL}" and _looks_cached(name_or_path):
            return name_or_path, DEFAULT_MODEL
        return str(provision_default_model(progress)), DEFAULT_MODEL
    if name_or_path in PACKAGED_MODELS:
        return str(provision_packaged_model(name_or_path, progress)), name_or_path
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            try:
                return str(provision_gguf(path, progress)), name_or_path
            except Exception as exc:  # noqa: BLE001 - a broken GGUF is one line too
                raise ModelLoadError(
                    f"Could not read {name_or_path!r} as a GGUF model: {_first_line(exc)}"
                ) from exc
        if path.is_dir() and not (path / "config.json").exists():
            raise ModelLoadError(
                f"{name_or_path!r} is a folder without a config.json, so not a model folder."
            )
        return str(path), name_or_path
    if _looks_like_path(name_or_path):
        raise ModelLoadError(f"Model path does not exist: {name_or_path}")
    return name_or_path, name_or_path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or name.count("/") > 1


def _looks_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - a cache lookup that fails means "not cached"
        return False
