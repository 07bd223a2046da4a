"""attnlrp: conservation on tiny models of each family, the rules confined to one model and
one call, refusal of other architectures, and the matrix / contrast / span targets.

Conservation: with AttnLRP's rules the relevances of all input positions (embedding ⊙
modified gradient) plus the bias terms the rules leave sum to the explained logit. Two
kinds of bias term are measured here, independently of the product code: each softmax's
Σ_j R_out_j − Σ_i R_in_i (an instrumented eager attention put in place of the fused one
for the test) and each linear bias's b · dlogit/db (Qwen2's q/k/v biases). Tolerance:
1e-5 relative to the largest of |logit| and the terms, in float32.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from promptxray import PromptXrayError, attribute, build_problem
from promptxray.methods import lrp_rules
from promptxray.methods.lrp_rules import UnsupportedArchitectureError, attnlrp_rules

TOLERANCE = 1e-5
N_TOKENS = 14


def tiny_model(family: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A random float32 model of the family, small enough to run in milliseconds."""
    import transformers as tf

    common = {
        "vocab_size": 97,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
    }
    torch.manual_seed(seed)
    if family == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**common, **overrides))
    elif family == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**common, **overrides))
        for m in model.modules():  # q/k/v biases start at zero: make them matter
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.data.normal_(0.0, 0.5)
    else:  # gemma3: a sliding layer whose window is shorter than the sequence, q/k norms
        layers = ["sliding_attention", "full_attention", "sliding_attention"]
        config = tf.Gemma3TextConfig(
            **common, head_dim=8, sliding_window=5, layer_types=layers, **overrides
        )
        model = tf.Gemma3ForCausalLM(config)
        for name, p in model.named_parameters():  # (1 + w) norms start at w = 0: vary them
            if "norm" in name:
                p.data.normal_(0.0, 0.3)
    return model.eval()


class _RecordedSoftmax(torch.autograd.Function):
    """Softmax whose backward is the ordinary one, recording Σ_j R_j − Σ_i x_i ∂_i: the
    relevance the softmax rule does not hand on (masked entries excluded).

    The rules apply A·V's uniform rule as a scale on Q and K (1/4 = 1/2 · 1/2) rather than
    on A's gradient, so the gradient g reaching A here is the unhalved one: A's relevance
    is R_j = s_j g_j / 2, and the input side, linear in g, halves with it."""

    @staticmethod
    def forward(ctx, scores, terms):
        probs = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(scores, probs)
        ctx.terms = terms
        return probs

    @staticmethod
    def backward(ctx, grad):
        scores, probs = ctx.saved_tensors
        grad_in = probs * (grad - (probs * grad).sum(-1, keepdim=True))
        valid = torch.isfinite(scores)
        out_relevance = (probs * grad)[valid].sum()
        in_relevance = (scores * grad_in)[valid].sum()
        ctx.terms.append(float((out_relevance - in_relevance).detach()) / 2)
        return grad_in, None


def recording_attention(terms: list[float]):
    """Eager attention (same masks, GQA, scaling) with the recorded softmax."""
    from transformers.models.llama.modeling_llama import repeat_kv

    def attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
        key = repeat_kv(key, module.num_key_value_groups)
        value = repeat_kv(value, module.num_key_value_groups)
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        length = scores.shape[-1]
        if attention_mask is None:
            allowed = torch.ones(length, length, dtype=torch.bool).tril()
        elif attention_mask.dtype == torch.bool:
            allowed = attention_mask
        else:
            allowed = attention_mask == 0
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = _RecordedSoftmax.apply(scores, terms)
        return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs

    return attention


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 97, (1, N_TOKENS), generator=torch.Generator().manual_seed(seed))


def explained(model, ids, position: int = -2, token: int | None = None, biases=()):
    """(logit, input relevances [T], gradients w.r.t. `biases`) for one logit."""
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    token = int(ids[0, position + 1]) if token is None else token
    logit = model(inputs_embeds=embeds, use_cache=False).logits[0, position, token]
    grads = torch.autograd.grad(logit, [embeds, *biases])
    return float(logit.detach()), (grads[0] * embeds)[0].sum(-1).detach(), grads[1:]


def _linear_biases(model) -> list[torch.nn.Parameter]:
    found = [m.bias for m in model.modules() if isinstance(m, torch.nn.Linear)]
    found = [b for b in found if b is not None]
    for b in found:
        b.requires_grad_(True)
    return found


def _conservation(model, monkeypatch) -> tuple[float, float, float, float]:
    """(logit, Σ input relevance, Σ softmax bias terms, Σ linear bias relevance)."""
    terms: list[float] = []
    monkeypatch.setattr(lrp_rules, "fused_attention", recording_attention(terms))
    biases = _linear_biases(model)
    with attnlrp_rules(model):
        logit, relevance, grads = explained(model, _ids(), biases=biases)
    bias_relevance = sum(float((b.detach() * g).sum()) for b, g in zip(biases, grads, strict=True))
    return logit, float(relevance.sum()), sum(terms), bias_relevance


@pytest.mark.parametrize(
    ("family", "overrides"),
    [
        ("llama", {}),
        ("qwen2", {}),  # q/k/v biases: their relevance is accounted
        ("gemma3", {}),
        ("gemma3", {"final_logit_softcapping": 0.2}),  # identity rule through the cap
    ],
)
def test_relevance_is_conserved_up_to_the_bias_terms(family, overrides, monkeypatch):
    model = tiny_model(family, **overrides)
    logit, inputs, softmax_bias, linear_bias = _conservation(model, monkeypatch)
    scale = max(abs(logit), abs(inputs), abs(softmax_bias), abs(linear_bias))
    assert inputs + softmax_bias + linear_bias == pytest.approx(logit, abs=TOLERANCE * scale)
    assert abs(softmax_bias) > 1e-3 * scale  # the terms are really there and measured
    if family == "qwen2":
        assert abs(linear_bias) > 1e-3 * scale


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3"])
def test_plain_gradient_times_input_is_not_conserved(family, monkeypatch):
    """The identity above is not true of any gradient: without the rules it fails."""
    model = tiny_model(family)
    logit, _, softmax_bias, linear_bias = _conservation(model, monkeypatch)
    biases = _linear_biases(model)
    _, plain, grads = explained(model, _ids(), biases=biases)
    plain_bias = sum(float((b.detach() * g).sum()) for b, g in zip(biases, grads, strict=True))
    total = float(plain.sum()) + plain_bias
    assert abs(total - logit) > 100 * TOLERANCE * max(abs(logit), abs(total))


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3"])
def test_the_fused_kernel_gives_the_instrumented_attention_relevances(family, monkeypatch):
    """The product path (torch's fused attention) and the eager one the conservation test
    measures apply the same rules: the same relevances."""
    model = tiny_model(family)
    with attnlrp_rules(model):
        _, fused, _ = explained(model, _ids())
    monkeypatch.setattr(lrp_rules, "fused_attention", recording_attention([]))
    with attnlrp_rules(model):
        _, eager, _ = explained(model, _ids())
    assert fused.tolist() == pytest.approx(eager.tolist(), abs=1e-5)


# ----- the rules touch one model, for one call -------------------------------------------------
def _state(model) -> tuple:
    return (
        {name: dict(m.__dict__) for name, m in model.named_modules()},
        model.config._attn_implementation,
    )


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_the_model_is_left_exactly_as_it_was(family):
    model = tiny_model(family, final_logit_softcapping=3.0 if family == "gemma3" else None)
    twin = tiny_model(family, seed=5)
    twin.config = model.config  # even a model sharing the config object stays untouched
    for m in twin.modules():
        if "config" in m.__dict__:
            m.config = model.config
    ids = _ids()
    before = explained(model, ids)
    twin_before = explained(twin, ids)
    state = _state(model)
    with attnlrp_rules(model):
        ruled = explained(model, ids)
        assert explained(twin, ids)[1].tolist() == twin_before[1].tolist()
        assert model.config is not twin.config
    with pytest.raises(RuntimeError, match="inside"):  # undone on an error too
        with attnlrp_rules(model):
            raise RuntimeError("inside")
    after = explained(model, ids)
    assert _state(model) == state and model.config is twin.config
    assert after[0] == before[0] and after[1].tolist() == before[1].tolist()
    assert ruled[0] == before[0]  # the forward's values never change ...
    assert ruled[1].tolist() != before[1].tolist()  # ... only the backward


def test_other_architectures_are_refused_naming_the_supported_ones():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedArchitectureError) as info:
        with attnlrp_rules(model):
            pass
    message = str(info.value)
    assert "gpt2" in message and all(f in message for f in ("llama", "qwen2", "gemma3"))
    assert isinstance(info.value, PromptXrayError) and "\n" not in message


# ----- through the method: rows, whole target, contrast, span ----------------------------------
PROMPT = "The keeper wrote to his daughter about the storm. It broke the old lamp."
TARGET = " She came home at once."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=TARGET)


def test_scores_are_the_rules_relevances_of_the_summed_target_logits(tiny_lm, problem):
    whole = attribute(tiny_lm, problem, "attnlrp", "token", check=False)
    ids = torch.tensor([problem.ids])
    model = tiny_lm.model
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    with attnlrp_rules(model):
        logits = model(inputs_embeds=embeds, use_cache=False).logits[0]
        start = problem.target_start
        picked = logits[start - 1 : -1].gather(-1, ids[0, start:, None]).sum()
        (grad,) = torch.autograd.grad(picked, embeds)
    expected = (grad * embeds)[0].sum(-1)[problem.source_positions]
    assert whole.scores == pytest.approx(expected.tolist(), abs=1e-5)
    assert whole.signed and whole.aggregation.value == "sum"


def test_matrix_rows_sum_to_the_whole_target(tiny_lm, problem):
    whole = attribute(tiny_lm, problem, "attnlrp", "word", check=False)
    rows = attribute(tiny_lm, problem, "attnlrp", "word", matrix=True, check=False, batch_size=3)
    assert len(rows.matrix) == len(problem.target_ids)
    sums = [sum(column) for column in zip(*rows.matrix, strict=True)]
    assert sums == pytest.approx(whole.scores, abs=1e-5)
    assert rows.scores == pytest.approx(whole.scores, abs=1e-5)


def test_recomputed_layers_and_one_row_a_backward_give_the_same_matrix(
    tiny_lm, problem, monkeypatch
):
    """Long prompts recompute each layer in the backward: the rules hold there too."""
    from promptxray.methods import gradient_rows
    from promptxray.model import memory

    before = attribute(tiny_lm, problem, "attnlrp", "token", matrix=True, check=False)
    monkeypatch.setattr(memory, "BUDGET_BYTES", 1)
    assert all(b.recompute for b in gradient_rows.plan_token_blocks(tiny_lm, problem, 4))
    after = attribute(tiny_lm, problem, "attnlrp", "token", matrix=True, check=False)
    for row_before, row_after in zip(before.matrix, after.matrix, strict=True):
        assert row_after == pytest.approx(row_before, abs=1e-5)


def test_contrast_is_the_target_minus_the_alternative(tiny_lm):
    other = " He stayed at sea."
    a = attribute(tiny_lm, build_problem(tiny_lm, PROMPT, target=TARGET), "attnlrp", check=False)
    b = attribute(tiny_lm, build_problem(tiny_lm, PROMPT, target=other), "attnlrp", check=False)
    both = build_problem(tiny_lm, PROMPT, target=TARGET, contrast=other)
    versus = attribute(tiny_lm, both, "attnlrp", matrix=True, check=False)
    expected = [x - y for x, y in zip(a.scores, b.scores, strict=True)]
    assert versus.scores == pytest.approx(expected, abs=1e-5)
    assert len(versus.matrix) == len(both.target_ids) + len(both.contrast_ids)


def test_a_span_is_the_sum_of_its_rows(tiny_lm, problem):
    full = attribute(tiny_lm, problem, "attnlrp", "word", matrix=True, check=False)
    spans = full.target_token_spans()
    first, last = 2, 4  # tokens 2..4 of the output
    span = (spans[first][0], spans[last][1])
    part = build_problem(tiny_lm, PROMPT, output_ids=problem.target_ids, span=span)
    assert len(part.target_ids) == last - first + 1
    alone = attribute(tiny_lm, part, "attnlrp", "word", check=False)
    rows = full.matrix[first : last + 1]
    expected = [sum(column) for column in zip(*rows, strict=True)]
    # The span's context holds the output before it: only the prompt's words compare.
    n = len(full.scores)
    assert alone.scores[:n] == pytest.approx(expected, abs=1e-5)


def test_bfloat16_agrees_with_float32(tiny_lm, problem):
    """The rules keep the model's dtypes (norms in float32 as the originals): bfloat16
    scores within 10% of the largest float32 score, as for the other gradient methods."""
    import copy

    from promptxray.model import LanguageModel

    half = LanguageModel(copy.deepcopy(tiny_lm.model).to(torch.bfloat16), tiny_lm.tokenizer)
    full = attribute(tiny_lm, problem, "attnlrp", "word", check=False)
    half_problem = build_problem(half, PROMPT, target=TARGET)
    low = attribute(half, half_problem, "attnlrp", "word", check=False)
    assert low.metadata["dtype"] == "bfloat16"
    peak = max(abs(s) for s in full.scores)
    assert low.scores == pytest.approx(full.scores, abs=0.1 * peak + 1e-3)


def test_an_unsupported_model_is_refused_by_the_method_and_its_estimate():
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from promptxray import api
    from promptxray.model import LanguageModel, provision_default_model

    tokenizer = AutoTokenizer.from_pretrained(str(provision_default_model()))
    config = GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=len(tokenizer))
    lm = LanguageModel(GPT2LMHeadModel(config).eval(), tokenizer, name="tiny-gpt2")
    problem = build_problem(lm, PROMPT, target=TARGET)
    request = api.check_request("attnlrp", "word")
    with pytest.raises(UnsupportedArchitectureError, match="gpt2"):
        request.spec.predict(lm, problem, request.units(problem), request.params)
    with pytest.raises(UnsupportedArchitectureError, match="llama"):
        attribute(lm, problem, "attnlrp", check=False)


# ----- against the authors' own implementation -------------------------------------------------
FAMILIES = ["llama", "qwen2", "gemma3"]


@pytest.fixture(scope="module")
def lxt_relevances(tmp_path_factory) -> dict[str, list[float]]:
    """lxt 2.1's AttnLRP relevances for each family's tiny model, from one separate process
    (lxt patches transformers' classes process-wide; see lxt_reference.py for the two
    shims it needs under transformers 5)."""
    jobs = []
    for family in FAMILIES:
        folder = tmp_path_factory.mktemp(family)
        tiny_model(family).save_pretrained(folder)
        ids = _ids()[0].tolist()
        job = {"family": family, "model_dir": str(folder), "ids": ids}
        jobs.append({**job, "position": -2, "token": ids[-1]})
    script = Path(__file__).with_name("lxt_reference.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(zip(FAMILIES, json.loads(done.stdout.strip().splitlines()[-1]), strict=True))


@pytest.mark.skipif(importlib.util.find_spec("lxt") is None, reason="lxt is not installed")
@pytest.mark.parametrize("family", FAMILIES)
def test_relevances_match_lxt(family, lxt_relevances):
    """The same per-token relevances as the authors' package on the same tiny model."""
    model = tiny_model(family)
    with attnlrp_rules(model):
        _, ours, _ = explained(model, _ids())
    _, plain, _ = explained(model, _ids())
    theirs = lxt_relevances[family]
    peak = float(ours.abs().max())
    assert ours.tolist() == pytest.approx(theirs, abs=1e-6 * peak)
    assert plain.tolist() != pytest.approx(theirs, abs=1e-2 * peak)  # lxt's rules did apply
