"""A callback between decoder layers, so a cancel lands inside one long call.

Cancelling works through progress callbacks, which a method calls between its
batches. A forward-mode call that batches several tangents runs for seconds on a
CPU; rather than shrinking it (each call recomputes the primal, so small calls cost
up to twice the work), the method installs a heartbeat: a forward pre-hook on every
decoder layer that calls it, so a callback that raises (the server's
`JobCancelled`) stops the call within one layer's work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .memory import layer_stack


@contextlib.contextmanager
def beat_between_layers(model: Any, beat: Callable[[], None] | None) -> Iterator[None]:
    """Within the block, call `beat()` before each decoder layer runs (None: nothing)."""
    stack = layer_stack(model) if beat is not None else None
    if not stack:
        yield
        return
    handles = [layer.register_forward_pre_hook(lambda *_: beat()) for layer in stack]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
