"""Shared fixtures: a tiny random Llama (fast, exact tests) and the real default model."""

from __future__ import annotations

import pytest
import torch

from promptxray.model import LanguageModel, load_model, provision_default_model

# Fixtures that several test modules share live in these plain modules, so that no test
# module imports another's fixtures.
pytest_plugins = ["problem_fixtures", "server_fixtures", "browser_fixtures"]


def make_tiny_lm(seed: int = 0, layers: int = 2, hidden: int = 32) -> LanguageModel:
    """A random Llama with the default model's tokenizer and chat template.

    The weights are random, so only invariants and exact values are testable, but
    every code path (template, offsets, batching, gradients) is the real one.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(provision_default_model()))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    return LanguageModel(model, tokenizer, name="tiny-random-llama")


@pytest.fixture(scope="session")
def tiny_lm() -> LanguageModel:
    return make_tiny_lm()


@pytest.fixture(scope="session")
def default_lm() -> LanguageModel:
    return load_model()
