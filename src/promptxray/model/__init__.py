"""The model package: the only code that talks to transformers.

Rooms, one job each: `devices` (device and dtype, `auto`, checked before loading),
`provision` (GGUF files dequantised once into a safetensors cache), `loading`
(`load_model`), `encoding` (chat template, roles, character spans), `generation`
(greedy), `scoring` (batched variant scoring with the shared-prefix cache where a
probe finds it exact), `memory` (bounded backward on long prompts), and
`language_model`, the thin `LanguageModel` façade over them.
"""

from __future__ import annotations

from ..record import Batching
from ..roles import (
    MESSAGE_ROLES,
    ROLE_ASSISTANT,
    ROLE_OUTPUT,
    ROLE_SYSTEM,
    ROLE_TEMPLATE,
    ROLE_USER,
    Message,
    Role,
    Span,
)
from .core import CostCounter
from .devices import DEVICE_CHOICES, DTYPE_CHOICES, Placement, resolve_placement
from .encoding import PromptEncoding
from .language_model import LanguageModel
from .loading import load_model
from .provision import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    cache_dir,
    provision_default_model,
    provision_gguf,
    provision_packaged_model,
)
from .scoring import MaskedContext

__all__ = [
    "DEFAULT_MODEL",
    "DEVICE_CHOICES",
    "DTYPE_CHOICES",
    "MESSAGE_ROLES",
    "PACKAGED_MODELS",
    "ROLE_ASSISTANT",
    "ROLE_OUTPUT",
    "ROLE_SYSTEM",
    "ROLE_TEMPLATE",
    "ROLE_USER",
    "Batching",
    "CostCounter",
    "LanguageModel",
    "MaskedContext",
    "Message",
    "Placement",
    "PromptEncoding",
    "Role",
    "Span",
    "cache_dir",
    "load_model",
    "provision_default_model",
    "provision_gguf",
    "provision_packaged_model",
    "resolve_placement",
]
