"""Where a model runs and in which number type: `auto` rules and checks before loading.

A wrong device used to surface as a raw error after the weights had loaded; here
every choice is checked against what this torch can do before anything loads,
and `auto` is decided in one place so the CLI can print what it picked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidParameterError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DTYPE_CHOICES = ("auto", *DTYPES)
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True)
class Placement:
    """A checked device and number type, and whether each was picked by `auto`."""

    device: torch.device
    dtype: torch.dtype
    auto_device: bool = False
    auto_dtype: bool = False

    def describe(self) -> str:
        """One line for the user: what runs where, and which parts `auto` chose."""
        dtype = str(self.dtype).removeprefix("torch.")
        chosen = [
            name
            for name, auto in (("device", self.auto_device), ("dtype", self.auto_dtype))
            if auto
        ]
        note = f" ({' and '.join(chosen)} picked by auto)" if chosen else ""
        return f"{self.device} {dtype}{note}"


def resolve_device(device: str | torch.device | None) -> tuple[torch.device, bool]:
    """The torch device for `device` (None or "auto": the first GPU, else CPU), checked.

    Raises `InvalidParameterError` with the reason when this torch cannot use it.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda"), True
        return torch.device("cpu"), True
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameterError(
            f"Unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(
                f"Device {device!r} needs CUDA, which this torch ({torch.__version__}) cannot "
                "use here; use device cpu (or auto).",
                param="device",
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InvalidParameterError(
                f"Device {device!r} does not exist: this machine has {count} CUDA device(s)."
            )
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise InvalidParameterError(
                f"Device {device!r} needs Apple's MPS, which is not available here; "
                "use device cpu (or auto).",
                param="device",
            )
    elif parsed.type != "cpu":
        raise InvalidParameterError(
            f"Unsupported device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}."
        )
    return parsed, False


def resolve_dtype(
    dtype: str | torch.dtype | None, device: torch.device
) -> tuple[torch.dtype, bool]:
    """The number type for `dtype` on `device`; `auto` is bfloat16 on a GPU that has it,
    else float32 (float16 overflows too easily to be a silent default)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise InvalidParameterError(
                f"Unsupported dtype {dtype}; choose one of {', '.join(DTYPE_CHOICES)}."
            )
        return dtype, False
    name = _ALIASES.get(str(dtype).lower(), str(dtype).lower()) if dtype else "auto"
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16, True
        return torch.float32, True
    if name.removeprefix("torch.") in DTYPES:
        return DTYPES[name.removeprefix("torch.")], False
    raise InvalidParameterError(
        f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_CHOICES)}."
    )


def resolve_placement(
    device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
) -> Placement:
    """Check a device and a dtype together (the dtype's `auto` depends on the device)."""
    torch_device, auto_device = resolve_device(device)
    torch_dtype, auto_dtype = resolve_dtype(dtype, torch_device)
    return Placement(torch_device, torch_dtype, auto_device, auto_dtype)


def dtype_name(dtype: torch.dtype) -> str:
    """ "bfloat16" rather than "torch.bfloat16", as results record it."""
    return str(dtype).removeprefix("torch.")
