"""Masking operators: what "without this unit" means for the model.

Perturbation methods and the faithfulness evaluation both ask the model about a
prompt with some units taken away. There are three honest ways to take a unit
away and they do not give the same numbers, so every result names the operator it
used and the evaluation reuses that same operator:

- ``delete``: drop the unit's tokens (the user reads "the prompt without these words";
  later tokens move to earlier positions).
- ``replace``: swap each of the unit's tokens for one neutral baseline token
  (positions and length kept).
- ``zero``: keep the ids but zero the unit's input embeddings (the XPrompt paper's
  ``m * x``; only possible inside the model, so a ``MaskedContext`` carries the
  positions to zero rather than different ids).

Only source units (user text, system text, earlier output) are ever masked; chat
template tokens stay, because the question is about the user's words, not about
the template the model was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from .errors import InvalidParameterError
from .model import ROLE_USER, LanguageModel, MaskedContext
from .segments import Unit
from .targets import Problem

Operator = Literal["delete", "replace", "zero"]
OPERATORS: tuple[str, ...] = get_args(Operator)
DEFAULT_OPERATOR: Operator = "delete"


def check_operator(operator: str) -> str:
    """Return `operator` if it is one we know; otherwise raise an error listing the valid ones."""
    if operator not in OPERATORS:
        raise InvalidParameterError(
            f"Unknown masking operator {operator!r}; choose one of {', '.join(OPERATORS)}."
        )
    return operator


def baseline_token_id(lm: LanguageModel) -> int:
    """The token `replace` puts in place of each masked token.

    A lone space: it is an ordinary text token, so it neither carries meaning nor
    acts as a control token. (SmolLM2's unk token is <|endoftext|>, which would
    tell the model a new document starts mid-prompt.) Tokenizers without a
    one-token space fall back to unk, then pad.
    """
    ids = lm.tokenizer(" ", add_special_tokens=False)["input_ids"]
    if len(ids) == 1:
        return int(ids[0])
    for candidate in (lm.tokenizer.unk_token_id, lm.tokenizer.pad_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def unit_positions(problem: Problem, units: list[Unit], indices: Iterable[int]) -> list[int]:
    """Positions in `problem.context_ids` covered by the given units (sorted, unique)."""
    sources = problem.source_positions
    chosen = set()
    for i in indices:
        if not 0 <= i < len(units):
            raise InvalidParameterError(f"Unit index {i} is out of range (0..{len(units) - 1}).")
        chosen.update(sources[t] for t in units[i].tokens)
    return sorted(chosen)


def mask_context(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    masked: Iterable[int],
    operator: str = DEFAULT_OPERATOR,
    baseline_id: int | None = None,
) -> MaskedContext:
    """The context with `units[i]` masked for every i in `masked`.

    `baseline_id` overrides the token that `replace` uses.
    """
    check_operator(operator)
    context = list(problem.context_ids)
    positions = unit_positions(problem, units, masked)
    if operator == "delete":
        drop = set(positions)
        kept = [t for p, t in enumerate(context) if p not in drop]
        return MaskedContext(kept or _empty_context(lm), [], operator)
    if operator == "replace":
        token = baseline_token_id(lm) if baseline_id is None else int(baseline_id)
        for p in positions:
            context[p] = token
        return MaskedContext(context, [], operator)
    return MaskedContext(context, positions, operator)


def _empty_context(lm: LanguageModel) -> list[int]:
    """What the model reads when every token was deleted: the token a document starts
    with (BOS, else EOS, as GPT-2-style models start documents), so "the prompt
    without all of it" is still a question the model can answer."""
    start = lm.start_token_id()
    if start is None:
        raise InvalidParameterError(
            "Deleting every unit leaves nothing to read, and this tokenizer has no BOS or EOS "
            "token to start from; use masking 'replace' or 'zero'."
        )
    return [start]


def keep_only(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    kept: Iterable[int],
    operator: str = DEFAULT_OPERATOR,
    baseline_id: int | None = None,
) -> MaskedContext:
    """The context with every source unit masked except `kept` (for sufficiency metrics)."""
    keep = set(kept)
    for i in keep:
        if not 0 <= i < len(units):
            raise InvalidParameterError(f"Unit index {i} is out of range (0..{len(units) - 1}).")
    masked = [i for i in range(len(units)) if i not in keep]
    return mask_context(lm, problem, units, masked, operator, baseline_id)


def masked_prompt_text(problem: Problem, units: list[Unit], masked: Iterable[int]) -> str:
    """The user's prompt with the masked units' text cut out, for showing what was removed.

    A cut also takes the spaces before it (the space belongs to the removed word,
    as in byte-level tokens), or after it when it starts the text, so "the sky is
    blue" without "sky" reads "the is blue". Units of other roles are not in the
    prompt text and are ignored here.
    """
    text = problem.encoding.prompt
    cuts = sorted(
        units[i].span for i in set(masked) if units[i].role == ROLE_USER and units[i].span
    )
    merged: list[list[int]] = []
    for start, end in cuts:
        while start > 0 and text[start - 1] in " \t":
            start -= 1
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces = []
    cursor = 0
    for start, end in merged:
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    out = "".join(pieces)
    if merged and merged[0][0] == 0:
        out = out.lstrip(" \t")
    return out
