"""Errors in the page's words: which request field a problem is about, in one readable line.

The library names its parameters (`k`, `granularity`, `target`); a web client knows
the fields it sent (`k` or `params.k`, `granularity`, `response`). A library error
raised while a request body is handled (`naming_fields`) gets its field from the
body (`schemas.RequestBody.field_for`); one raised for a query names the query
parameter of the same name. Pydantic's own complaints ("Input should be less than or
equal to 2048", "0: JSON decode error") become "max_new_tokens: must be at most 2048"
and "the request body is not valid JSON".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import PromptXrayError
from .schemas import RequestBody


class FieldError(Exception):
    """A library error raised for one request, with the request field it is about."""

    def __init__(self, error: PromptXrayError, field: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.field = field


@contextmanager
def naming_fields(body: RequestBody) -> Iterator[None]:
    """Library errors raised inside name `body`'s field for their parameter (FieldError)."""
    try:
        yield
    except PromptXrayError as exc:
        field = body.field_for(exc.param) if exc.param else None
        raise FieldError(exc, field) from exc


def query_field(error: PromptXrayError, query: Mapping[str, str]) -> str | None:
    """The query parameter a library error is about, when the request sent one by its name."""
    return error.param if error.param and error.param in query else None


# pydantic's error types, as the page says them (with the limits from the error's ctx).
_WORDS = {
    "missing": "is required",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} items",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}

_BODY_WORDS = {
    "json_invalid": "the request body is not valid JSON",
    "missing": "the request body is missing: send a JSON object",
}


def field_name(loc: Sequence[Any]) -> str:
    """A pydantic location as the page names it: `max_new_tokens`, `params.k`, `span[1]`."""
    name = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def validation_line(error: Mapping[str, Any]) -> tuple[str | None, str]:
    """One pydantic error as (field, "field: what is wrong"); the body's own problems
    (not JSON, missing, not an object) have no field."""
    kind, loc, ctx = error.get("type", ""), tuple(error.get("loc", ())), error.get("ctx") or {}
    in_body = bool(loc) and loc[0] == "body"
    if in_body and (kind == "json_invalid" or len(loc) == 1):
        if kind in _BODY_WORDS:
            return None, _BODY_WORDS[kind]
        return None, f"the request body {_words(kind, ctx, error.get('msg', ''))}"
    field = field_name(loc)
    return field or None, f"{field}: {_words(kind, ctx, error.get('msg', ''))}"


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> tuple[str | None, str]:
    """Every pydantic error of a request in one line, and the first field named."""
    lines = [validation_line(e) for e in errors]
    unique = list(dict.fromkeys(line for _, line in lines))
    first = next((field for field, _ in lines if field), None)
    return first, "; ".join(unique) or "Invalid request."


def _words(kind: str, ctx: Mapping[str, Any], message: str) -> str:
    template = _WORDS.get(kind)
    if template is not None:
        try:
            return template.format(**ctx)
        except (KeyError, IndexError):
            pass
    text = message.removeprefix("Value error, ")
    first = text.split(" ", 1)[0]
    return text if first.isupper() else text[:1].lower() + text[1:]
