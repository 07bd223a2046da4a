"""The options several commands share, declared once (help text, flag, metavar).

Each command's Python parameter is named as the library parameter it feeds (`system_prompt`
for `--system`, `address` for `--ray-address`), so a library error's `param` names the
option at fault (`common.user_errors`) and the option test can follow every value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from .. import api

PromptArg = Annotated[
    str | None,
    typer.Argument(
        help="The prompt text; '-' reads it from stdin, '@file.txt' from a file "
        "(or give a conversation with --messages instead).",
        metavar="PROMPT",
        show_default=False,
    ),
]
MessagesOpt = Annotated[
    str | None,
    typer.Option(
        "--messages",
        metavar="FILE.json",
        help='A conversation instead of PROMPT: a JSON list of {"role": "system"|"user"|'
        '"assistant", "content": ...} (\'-\' reads stdin). Every turn is scored; a final '
        "assistant message is the answer to explain, else the model answers.",
        show_default=False,
    ),
]
MethodOpt = Annotated[
    str,
    typer.Option(
        "--method", "-m", help="Attribution method (see `promptxray methods`).", show_default=True
    ),
]
GranularityOpt = Annotated[
    str,
    typer.Option(
        "--granularity",
        "-g",
        help=f"Units to score: {', '.join(api.GRANULARITIES)} or regex (with --pattern).",
    ),
]
PatternOpt = Annotated[
    str | None,
    typer.Option(
        "--pattern", metavar="REGEX", help="Regular expression whose matches are the units (regex)."
    ),
]
SystemOpt = Annotated[
    str | None,
    typer.Option("--system", metavar="TEXT", help="A system prompt; its words are scored too."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        metavar="TEXT",
        help="Explain this text as the model's answer instead of generating one "
        "(@FILE reads it from a file, e.g. a response logged from another model).",
    ),
]
ContrastOpt = Annotated[
    str | None,
    typer.Option(
        "--contrast",
        metavar="TEXT",
        help="Explain why the target rather than this text: scores attribute "
        "log p(target) - log p(TEXT), both from the same context (@FILE reads it).",
    ),
]
SpanOpt = Annotated[
    str | None,
    typer.Option(
        "--span",
        metavar="START:END",
        help="Explain only characters START:END of the output (e.g. 0:40); "
        "earlier output then counts as a source.",
    ),
]
MaxTokensOpt = Annotated[
    int, typer.Option("--max-new-tokens", help="Most tokens to generate for the output.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="ID_OR_PATH",
        help=f"Hugging Face id, local folder or .gguf file (default: {api.DEFAULT_MODEL}).",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the model runs: auto (first GPU, else CPU), cpu, cuda, cuda:N, mps.",
    ),
]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="Number type: auto (bfloat16 on a GPU that has it, else float32), float32, "
        "bfloat16, float16.",
    ),
]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check/--no-check",
        help="Check the explanation against the model (top units removed vs random sets, "
        "sufficiency, LDS); about 20 extra forward passes.",
    ),
]
CheckKOpt = Annotated[
    int | None,
    typer.Option(
        "--check-k",
        help="How many top units the check removes (default 3, fewer on short prompts).",
        show_default=False,
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "--k", help="Joint methods: size of the unit set (parameter k).", show_default=False
    ),
]
IterationsOpt = Annotated[
    int | None,
    typer.Option("--iterations", help="Parameter iterations (xprompt_paper).", show_default=False),
]
StepsOpt = Annotated[
    int | None,
    typer.Option("--steps", help="integrated_gradients: interpolation steps.", show_default=False),
]
MaskingOpt = Annotated[
    str | None,
    typer.Option(
        "--masking",
        help="Perturbation and joint methods: how a unit is removed (delete, replace, zero).",
        show_default=False,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="Any parameter the method declares (see `promptxray methods NAME`); repeatable.",
        show_default=False,
    ),
]
# How a command that yields one result shows it (explain, retarget): declared once.
TopOpt = Annotated[int, typer.Option("--top", help="How many top units to list.")]
JsonOutOpt = Annotated[
    str | None,
    typer.Option(
        "--json", metavar="FILE", help="Also write the result as JSON to FILE ('-' for stdout)."
    ),
]
HtmlOutOpt = Annotated[
    str | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Also write a standalone HTML page to FILE ('-' for stdout).",
    ),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", metavar="N", help="Use only the first N rows.")
]

# ----- Ray: five options, one `ray` argument -----------------------------------------------

_RAY_OPTIONS = [
    (
        "ray",
        Annotated[
            bool,
            typer.Option(
                "--ray",
                help="Run whole prompts on Ray workers (a local Ray unless --ray-address).",
            ),
        ],
        False,
    ),
    (
        "address",
        Annotated[
            str | None,
            typer.Option(
                "--ray-address", metavar="ADDRESS", help="Join this Ray cluster (implies --ray)."
            ),
        ],
        None,
    ),
    (
        "workers",
        Annotated[int, typer.Option("--workers", help="Ray workers (each loads the model).")],
        2,
    ),
    (
        "cpus_per_worker",
        Annotated[
            float,
            typer.Option("--cpus-per-worker", help="CPUs (and torch threads) per Ray worker."),
        ],
        1.0,
    ),
    (
        "gpus_per_worker",
        Annotated[float, typer.Option("--gpus-per-worker", help="GPUs per Ray worker.")],
        0.0,
    ),
]

Command = TypeVar("Command", bound=Callable[..., Any])


def ray_options(
    ray: bool, address: str | None, workers: int, cpus_per_worker: float, gpus_per_worker: float
) -> api.RayOptions | None:
    """The Ray settings when --ray or --ray-address was given, else None (one process).

    Whether Ray is installed and the settings make sense is checked where Ray starts,
    before any model loads.
    """
    if not ray and address is None:
        return None
    return api.RayOptions(
        address=address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
    )


def with_ray_options(command: Command) -> Command:
    """Give a command the Ray options (--ray, --ray-address, --workers, --cpus-per-worker,
    --gpus-per-worker); it receives them as one keyword `ray` (`api.RayOptions` or None).

    `evaluate` and `study` spread rows the same way, so the options are declared once
    here instead of twice; typer reads the signature this wrapper shows.
    """
    names = [name for name, _, _ in _RAY_OPTIONS]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        spread = ray_options(*(kwargs.pop(name) for name in names))
        return command(*args, ray=spread, **kwargs)

    own = inspect.signature(command, eval_str=True)
    kept = [p for p in own.parameters.values() if p.name != "ray"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, kind, default in _RAY_OPTIONS
    ]
    run.__signature__ = own.replace(parameters=kept + added)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in kept + added}
    del run.__wrapped__  # typer must read the signature above, not the command's own
    return run  # type: ignore[return-value]
