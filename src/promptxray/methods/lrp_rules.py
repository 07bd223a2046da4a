"""AttnLRP's propagation rules (Achtibat et al., ICML 2024), as a modified backward pass
applied to one model instance for the duration of one call.

Layer-wise relevance propagation in the gradient×input form: the relevance of any
activation is the activation times its gradient, where the backward pass is changed so
that each layer hands on its relevance by the paper's rules. Linear layers, residual
adds, rotary embeddings and the embedding scale need nothing (gradient×input of a linear
map without bias is already conservative). What changes:

- normalisation (RMSNorm, Gemma's (1 + w) RMSNorm incl. its q_norm/k_norm): the identity
  rule, i.e. the normaliser 1 / rms(x) is treated as a constant (`.detach()`);
- element-wise activations (SiLU, tanh-GELU of the gated MLP): the identity rule, i.e.
  the gradient of f at x is replaced by f(x) / x;
- element-wise product gate ⊙ up, and the attention products Q·Kᵀ and A·V: the uniform
  rule, each of the two factors gets half, i.e. the gradient into each factor is halved.
  For attention this is applied to the query, key and value tensors before the attention
  kernel: gradient scaling commutes with the (linear) backward maps in between, so
  halving at A·V and again at Q·Kᵀ is the same as scaling the gradient of V by 1/2 and of
  Q and K by 1/4, and the fused kernel (`sdpa`) can stay;
- softmax keeps its ordinary backward. The paper's rule R_in_i = x_i (R_i − s_i Σ_j R_j),
  with R_j = s_j g_j the relevance of output j (g its gradient), is x_i times the ordinary
  softmax gradient s_i (g_i − Σ_j s_j g_j): gradient×input already applies it. It is not
  conservative: it leaves a bias term Σ_j R_j − Σ_i R_in_i per row (as do linear biases).

Every value of the forward is unchanged (`x.detach() + (x − x.detach()) · c` is exactly x;
only its gradient is scaled by c). The changes are instance attributes of the modules
of one model and a private copy of its config, all undone in `finally`; the only
process-wide change is registering one attention function (and its mask builder) under a
name of our own, which by itself changes no model.
"""

from __future__ import annotations

import contextlib
import copy
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..errors import PromptXrayError

ATTENTION_NAME = "promptxray_attnlrp"

# model_type -> family shown to the user. gemma3_text is Gemma 3's language model
# (Gemma3ForCausalLM); SmolLM2 is a llama.
SUPPORTED = {"llama": "llama", "qwen2": "qwen2", "gemma3_text": "gemma3"}

# |x| below this: f(x)/x is taken as its limit at 0 (SiLU and GELU: 1/2).
_TINY = 1e-6


class UnsupportedArchitectureError(PromptXrayError):
    pass


def check_supported(model: Any) -> str:
    """The model's family, or one clear error naming the supported ones."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in SUPPORTED:
        names = ", ".join(f"{family} ({kind})" for kind, family in SUPPORTED.items())
        raise UnsupportedArchitectureError(
            f"attnlrp has propagation rules only for the {names} families "
            f"(model_type in parentheses); this model is {model_type!r}.",
            param="method",
        )
    return SUPPORTED[model_type]


def scale_backward(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x itself in the forward; its gradient multiplied by `factor` in the backward."""
    kept = x.detach()
    return kept + (x - kept) * factor


def identity_rule(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn(x) in the forward; backward by the identity rule: gradient f(x)/x (a constant),
    so relevance x · f(x)/x · g = f(x) · g passes unchanged to the input."""
    y = fn(x)
    if isinstance(fn, torch.nn.SiLU) or type(fn).__name__ == "SiLUActivation":
        ratio = torch.sigmoid(x)  # silu(x) / x, no division needed
    else:
        small = x.abs() <= _TINY
        limit = float(fn(torch.tensor([_TINY], dtype=torch.float32))[0]) / _TINY
        ratio = torch.where(small, torch.full_like(y, limit), y / torch.where(small, 1.0, x))
    kept = x.detach()
    return y.detach() + (x - kept) * ratio.detach()


# ----- the rules as forwards of single modules (bound to an instance while active) ----------
def _rms_norm(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    """Llama/Qwen2 RMSNorm with the normaliser held constant (identity rule); same dtypes."""
    dtype = hidden_states.dtype
    h = hidden_states.to(torch.float32)
    scale = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon).detach()
    return self.weight * (h * scale).to(dtype)


def _gemma_rms_norm(self: Any, x: torch.Tensor) -> torch.Tensor:
    """Gemma 3's RMSNorm ((1 + w), computed in float32) with the normaliser held constant."""
    h = x.float()
    scale = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps).detach()
    return (h * scale * (1.0 + self.weight.float())).type_as(x)


def _gated_mlp(self: Any, x: torch.Tensor) -> torch.Tensor:
    """down(act(gate(x)) ⊙ up(x)): identity rule through act, uniform rule on the product."""
    gate = identity_rule(self.act_fn, self.gate_proj(x))
    return self.down_proj(scale_backward(gate * self.up_proj(x), 0.5))


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """The model's attention with the uniform rule on both products applied as gradient
    scales on Q, K (1/4) and V (1/2); softmax's backward is its own."""
    return fused_attention(
        module,
        scale_backward(query, 0.25),
        scale_backward(key, 0.25),
        scale_backward(value, 0.5),
        attention_mask,
        **kwargs,
    )


def fused_attention(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """Attention by torch's fused kernel (transformers' `sdpa` function, masks as it builds
    them). Its own name so that a test can put an instrumented softmax in its place."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(*args, **kwargs)


def _capped_head(cap: float) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """An LM head followed by the final logit soft-cap, with the identity rule through it."""

    def forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
        logits = type(self).forward(self, hidden_states)
        return identity_rule(lambda z: torch.tanh(z / cap) * cap, logits)

    return forward


def _register_attention() -> None:
    """Our attention function and its mask builder, under our own name (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if ATTENTION_NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(ATTENTION_NAME, _attention)
    if ATTENTION_NAME not in AttentionMaskInterface._global_mapping:
        AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def _module_rules(family: str) -> dict[type, Callable[..., Any]]:
    """The family's module classes and the forward each gets while the rules are on."""
    if family == "gemma3":
        from transformers.models.gemma3 import modeling_gemma3 as m

        return {m.Gemma3RMSNorm: _gemma_rms_norm, m.Gemma3MLP: _gated_mlp}
    if family == "qwen2":
        from transformers.models.qwen2 import modeling_qwen2 as m

        return {m.Qwen2RMSNorm: _rms_norm, m.Qwen2MLP: _gated_mlp}
    from transformers.models.llama import modeling_llama as m

    return {m.LlamaRMSNorm: _rms_norm, m.LlamaMLP: _gated_mlp}


class _Overrides:
    """Instance attributes set for a while and put back exactly as they were."""

    _MISSING = object()

    def __init__(self) -> None:
        self.saved: list[tuple[Any, str, Any]] = []

    def set(self, obj: Any, name: str, value: Any) -> None:
        self.saved.append((obj, name, obj.__dict__.get(name, self._MISSING)))
        setattr(obj, name, value)

    def restore(self) -> None:
        for obj, name, before in reversed(self.saved):
            if before is self._MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, before)
        self.saved.clear()


def _set_forward(overrides: _Overrides, module: Any, fn: Callable[..., Any]) -> None:
    """Bind `fn` as the module's forward; under an accelerate hook (device maps), as the
    forward the hook calls, so the hook still moves tensors between devices."""
    name = "_old_forward" if hasattr(module, "_hf_hook") else "forward"
    overrides.set(module, name, types.MethodType(fn, module))


@contextlib.contextmanager
def attnlrp_rules(model: Any) -> Iterator[None]:
    """Within the block, `model`'s backward propagates relevance by AttnLRP's rules.

    Only this instance changes: its norm and MLP modules get a rule forward as an instance
    attribute, every module holding its config gets a private copy that selects our
    attention function (and turns the final soft-cap into an identity-rule head), and all
    of it is put back on exit. Another model of the same class, even one sharing the config
    object, is untouched. Raises `UnsupportedArchitectureError` for other families.
    """
    family = check_supported(model)
    _register_attention()
    rules = _module_rules(family)
    overrides = _Overrides()
    try:
        for module in model.modules():
            rule = rules.get(type(module))
            if rule is not None:
                _set_forward(overrides, module, rule)
        config = model.config
        private = copy.copy(config)
        private._attn_implementation_internal = ATTENTION_NAME
        cap = getattr(config, "final_logit_softcapping", None)
        if cap is not None:
            private.final_logit_softcapping = None
            _set_forward(overrides, model.get_output_embeddings(), _capped_head(float(cap)))
        for module in model.modules():
            if module.__dict__.get("config") is config:
                overrides.set(module, "config", private)
        yield
    finally:
        overrides.restore()
