"""Attribution methods, registered by name (importing this package registers them all)."""

from . import context_cite, gradient, joint, joint_paper, perturbation  # noqa: F401  (registers)
from .base import REGISTRY, MethodOutput, MethodSpec, get_method, register

__all__ = ["REGISTRY", "MethodOutput", "MethodSpec", "get_method", "register"]
