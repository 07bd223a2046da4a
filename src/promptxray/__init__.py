"""promptxray: which parts of a prompt drive what a language model writes."""

from . import render  # noqa: F401  (attaches the result's notebook and terminal display)
from .api import attribute, explain
from .attribution import Attribution, Unit
from .errors import PromptXrayError
from .model import DEFAULT_MODEL, LanguageModel, load_model
from .targets import Problem, build_problem

__all__ = [
    "DEFAULT_MODEL",
    "Attribution",
    "LanguageModel",
    "Problem",
    "PromptXrayError",
    "Unit",
    "attribute",
    "build_problem",
    "explain",
    "load_model",
]
__version__ = "0.1.0"
