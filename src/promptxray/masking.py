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


def masked_spans(
    units: list[Unit], masked: Iterable[int], role: str, turn: int | None = None
) -> list[tuple[int, int]]:
    """The character spans, sorted, of the masked units that lie in one text.

    A text is named by role and turn, because roles repeat across the turns of a
    conversation; a unit without a turn (a result saved before turns) or no `turn`
    asked for matches by role alone.
    """
    return sorted(
        units[i].span
        for i in set(masked)
        if units[i].role == role
        and units[i].span
        and (turn is None or units[i].turn is None or units[i].turn == turn)
    )


def removed_pieces(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, removed) pairs that join back to `text`: what a view strikes
    through to show every part of the context the model lost."""
    pieces: list[tuple[str, bool]] = []
    cursor = 0
    for start, end in sorted(spans):
        start = max(start, cursor)
        if start > cursor:
            pieces.append((text[cursor:start], False))
        if end > start:
            pieces.append((text[start:end], True))
        cursor = max(cursor, end)
    if cursor < len(text):
        pieces.append((text[cursor:], False))
    return pieces


def cut_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with the spans cut out, each cut taking the spaces before it.

    The space belongs to the removed word, as in byte-level tokens (or the spaces
    after it when the cut starts the text), so "the sky is blue" without "sky"
    reads "the is blue".
    """
    merged: list[list[int]] = []
    for start, end in sorted(spans):
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


def prompt_turn(problem: Problem) -> int | None:
    """The turn of `encoding.prompt`: the last user message (None if none is recorded)."""
    turns = [t for t, m in enumerate(problem.encoding.messages) if m.role == ROLE_USER]
    return turns[-1] if turns else None


def masked_prompt_text(problem: Problem, units: list[Unit], masked: Iterable[int]) -> str:
    """The user's prompt (the last user message) with the masked units' text cut out.

    For showing what was removed (`cut_spans`). Units of other roles, or of other
    turns of a conversation, are not in the prompt text and are ignored here;
    `masked_messages` gives every turn.
    """
    spans = masked_spans(units, masked, ROLE_USER, prompt_turn(problem))
    return cut_spans(problem.encoding.prompt, spans)


def masked_messages(
    problem: Problem, units: list[Unit], masked: Iterable[int]
) -> list[dict[str, str]]:
    """Every message the model read, each with the masked units of its turn cut out.

    The conversation as mask-and-regenerate saw it: the regeneration itself runs on
    `mask_context` (the same tokens, template kept), this is its text for people.
    """
    chosen = set(masked)
    return [
        {
            "role": message.role,
            "content": cut_spans(message.content, masked_spans(units, chosen, message.role, turn)),
        }
        for turn, message in enumerate(problem.encoding.messages)
    ]
