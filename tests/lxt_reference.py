"""Input relevances of one logit by the `lxt` package's own AttnLRP rules, for comparison.

Run as a separate process, given on stdin a JSON list of jobs {family (llama, qwen2 or
gemma3), model_dir, ids, position, token}; it prints a JSON list of results. lxt
patches transformers' module classes for the whole process, which must not reach the
test run. Two shims make lxt 2.1 run under transformers 5 without changing its rules:
- its package `__init__` imports every model it supports, among them a copy of BERT that
  imports a helper transformers removed (`find_pruneable_heads_and_indices`) and a ViT
  that needs torchvision; the packages are registered empty here so that only the Llama
  rules of the family asked for (`lxt.efficient.models.<family>`, `lxt.efficient.patches`,
  `lxt.efficient.rules`) are imported;
- its attention patch replaces the modeling module's `ALL_ATTENTION_FUNCTIONS` with a plain
  dict, while transformers 5 calls `.get_interface(name, default)` on it; the dict is
  given that method.
A result is embedding ⊙ gradient summed over dimensions, per input position.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import warnings
from pathlib import Path


def _empty_package(name: str) -> None:
    """Register package `name` (under lxt) without running its `__init__`."""
    root = Path(importlib.util.find_spec("lxt").submodule_search_locations[0])
    package = types.ModuleType(name)
    package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
    sys.modules[name] = package


class _Interface(dict):
    def get_interface(self, name, default):
        return self.get(name, default)


def main() -> None:
    _empty_package("lxt.efficient")
    _empty_package("lxt.efficient.models")
    print(json.dumps([relevance(**job) for job in json.load(sys.stdin)]))


def relevance(family: str, model_dir: str, ids: list[int], position: int, token: int) -> list:
    import torch
    from transformers import AutoModelForCausalLM

    rules = importlib.import_module(f"lxt.efficient.models.{family}")
    modeling = importlib.import_module(f"transformers.models.{family}.modeling_{family}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lxt warns about what it patches
        for target, patch in rules.attnLRP.items():
            patch(target)
    modeling.ALL_ATTENTION_FUNCTIONS = _Interface(modeling.ALL_ATTENTION_FUNCTIONS)

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, use_cache=False).logits
    logits[0, position, token].backward()
    return (embeds.grad * embeds)[0].sum(-1).tolist()


if __name__ == "__main__":
    main()
