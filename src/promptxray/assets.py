"""Files shipped inside installed packages: the default model's GGUF, the SentenceBERT folder.

Both live in a package installed from PyPI (so setup is one `pip install` with no
download at run time) and are found the same way: where Python imports the package
from, then the file inside it. A missing package or file is one `ModelLoadError`
that says what to install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelLoadError


def packaged_path(package: str, relative: str, what: str, install: str, marker: str = "") -> Path:
    """`relative` inside the installed `package`; `marker` (inside it) must exist too.

    `what` names the asset in errors ("The default model"), `install` is what to run
    to get it ("pip install ... (or ...)").
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"{what} is not installed: run {install}.")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    needed = path / marker if marker else path
    if not needed.exists():
        raise ModelLoadError(f"{what} is incomplete: {needed} is missing.")
    return path
