"""Attribution methods, registered by name (importing this package registers them all)."""

from . import (  # noqa: F401  (registers)
    attnlrp,
    context_cite,
    gradient,
    joint,
    joint_paper,
    perturbation,
)
from .base import REGISTRY, MethodOutput, MethodSpec, get_method, register

__all__ = ["REGISTRY", "MethodOutput", "MethodSpec", "get_method", "register"]
