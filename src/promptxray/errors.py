"""Errors a user can act on.

Every problem caused by input (a prompt, a target, a flag, a path) raises a
subclass of :class:`PromptXrayError`, so the CLI and the web server can show one
readable line instead of a traceback, while real bugs still surface as tracebacks.
"""


class PromptXrayError(Exception):
    """Base class: the message is shown to the user as is.

    The message speaks in the library's words: it names parameters (`k`, `granularity`),
    never a command-line flag or a form field, because a notebook user has neither.
    `param` names the parameter at fault, when there is one, so each caller can point at
    its own spelling of it (the CLI's `--k`, the web API's field `k`).
    """

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EmptyPromptError(PromptXrayError):
    pass


class PromptTooLongError(PromptXrayError):
    pass


class UnknownMethodError(PromptXrayError):
    pass


class UnknownGranularityError(PromptXrayError):
    pass


class SpanError(PromptXrayError):
    pass


class EmptyTargetError(PromptXrayError):
    pass


class ModelLoadError(PromptXrayError):
    pass


class InvalidParameterError(PromptXrayError):
    pass


class RegroupRefusedError(PromptXrayError):
    """A result asked for at a granularity its method's rule does not allow (recompute it)."""
