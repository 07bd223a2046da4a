"""The prompt debugger's HTTP side: JSON API, static page, error mapping, guards.

Handlers are thin: each parses its body and calls one `Service` function, which
checks the request (cheap: tokeniser only) and answers 4xx at once when it is
wrong; the model work goes to the job queue and the page polls it. The model is
chosen when the server starts, never by a request, and no endpoint takes a file
path from the client: history lives in the server's own data dir.

Every request first passes the guards of `security.py`: its Host must be one the
server answers to (400 otherwise, on every route), a state-changing request must
come from the page's own origin (403), and, when the server has an access token
(always on a non-loopback bind), every /api request must carry it (401).
There is no Swagger UI (it would load from a CDN); /openapi.json describes the API.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..api import GRANULARITIES, METHODS, LanguageModel
from ..errors import PromptXrayError, RegroupRefusedError
from ..render.palette import GAMMA_RANGE
from . import schemas
from .answers import FieldError, naming_fields, query_field, validation_detail, validation_line
from .jobs import JobQueue
from .method_words import PASS_NOTE, method_words
from .security import Guard, allowed_names, is_loopback, new_token, refusal_page
from .service import NotFoundError, Service
from .store import HistoryStore, check_data_dir

STATIC_DIR = Path(__file__).parent / "static"
# The page is ES modules (main.js imports the others), and a browser runs a module only
# when it comes as JavaScript; some systems' MIME tables call .js text/plain.
mimetypes.add_type("text/javascript", ".js")

# The page loads nothing from elsewhere and runs no inline script, so an injected
# tag in a prompt could not execute even if some text escaped the DOM builders.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# Methods in the order the page lists them; any other registered method follows.
_METHOD_ORDER = (
    "grad_norm",
    "grad_x_input",
    "integrated_gradients",
    "attnlrp",
    "leave_one_out",
    "context_cite",
    "xprompt",
)


# What the page says about a job whose tab is closed (also in its help text).
JOBS_OUTLIVE_THE_PAGE = (
    "Jobs keep running when their page is closed; their results land in the History."
)
GAMMA = Query(
    1.0,
    ge=GAMMA_RANGE[0],
    le=GAMMA_RANGE[1],
    description="Colour intensity: below 1 brings out weak units, above 1 only strong ones.",
)


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("promptxray"))


def make_guard(host: str, allowed_hosts: Sequence[str], token: str | None) -> Guard:
    """The app's guards: a non-loopback bind always gets a token (a fresh one if none given)."""
    if token is not None and not token.strip():
        token = None
    if token is None and not is_loopback(host):
        token = new_token()
    return Guard(hosts=allowed_names(host, allowed_hosts), token=token)


def create_app(
    lm: LanguageModel,
    data_dir: Path | str | None = None,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
    token: str | None = None,
) -> FastAPI:
    """An app serving one loaded model; history goes to `data_dir` (default: user data dir).

    `host` is the address the server is bound to: it and the loopback names are the
    Host headers answered, with `allowed_hosts` added. `token`, when given, is
    required on every /api request; a non-loopback `host` always requires one, so
    one is generated if none is given (read it from `app.state.token`).
    """
    folder = check_data_dir(data_dir if data_dir is not None else default_data_dir())
    store = HistoryStore(folder)
    jobs = JobQueue()
    service = Service(lm, store, jobs)
    guard = make_guard(host, allowed_hosts, token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(
        title="promptxray prompt debugger",
        version=__version__,
        description=(
            "Generate, explain which prompt parts drive the output, mask them and "
            "regenerate. Long work runs as jobs: submit, then poll /api/jobs/{id}. "
            + JOBS_OUTLIVE_THE_PAGE
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.lm, app.state.store, app.state.jobs = lm, store, jobs
    app.state.service, app.state.token = service, guard.token
    _install_error_handlers(app)
    _install_guards(app, guard)

    # ----- page ---------------------------------------------------------------------
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ----- facts --------------------------------------------------------------------
    @app.get("/api/info", response_model=schemas.InfoResponse)
    def info() -> dict[str, Any]:
        """The loaded model, the methods and granularities the page can offer."""
        names = [n for n in _METHOD_ORDER if n in METHODS]
        names += sorted(n for n in METHODS if n not in _METHOD_ORDER)
        methods = [
            {
                "name": n,
                "family": str(METHODS[n].family),
                "aggregation": str(METHODS[n].aggregation),
                "signed": METHODS[n].signed,
                "token_level": METHODS[n].regroupable,
                "description": METHODS[n].description,
                **method_words(METHODS[n]),
                "params": [p.as_dict() for p in METHODS[n].param_info()],
            }
            for n in names
        ]
        return {
            "model": lm.name,
            "max_context": lm.max_context,
            "methods": methods,
            "granularities": list(GRANULARITIES),
            "data_dir": str(store.path.parent),
            "jobs_note": JOBS_OUTLIVE_THE_PAGE,
            "gamma_range": list(GAMMA_RANGE),
            "passes_note": PASS_NOTE,
        }

    # ----- jobs ---------------------------------------------------------------------
    @app.post("/api/generate", response_model=schemas.JobRef, status_code=202)
    def generate(body: schemas.GenerateRequest) -> dict[str, str]:
        """Start generating the model's greedy output; poll the job for text as it grows."""
        with naming_fields(body):
            return _job_ref(service.start_generate(body))

    @app.post("/api/explain", response_model=schemas.JobRef, status_code=202)
    def explain(body: schemas.ExplainRequest) -> dict[str, str]:
        """Explain all of a run's output, or a character span of it, with one method."""
        with naming_fields(body):
            return _job_ref(service.start_explain(body))

    @app.post("/api/estimate", response_model=schemas.EstimateView)
    def estimate(body: schemas.ExplainRequest) -> dict[str, Any]:
        """Predicted passes and seconds of explaining this body, before it is queued."""
        with naming_fields(body):
            return service.estimate(body)

    @app.post("/api/check", response_model=schemas.JobRef, status_code=202)
    def check(body: schemas.CheckRequest) -> dict[str, str]:
        """The faithfulness check of a stored explanation regrouped to `granularity`, or of
        its heatmap row `token` against that output token's probability. The job's result:
        {explanation_id, granularity, token, check} (check as CheckView); one known already
        comes back as a finished job."""
        with naming_fields(body):
            return _job_ref(service.start_check(body))

    @app.post("/api/mask", response_model=schemas.JobRef, status_code=202)
    def mask(body: schemas.MaskRequest) -> dict[str, str]:
        """Remove the top-k units (or the listed ones) and regenerate; reports PR and KL."""
        with naming_fields(body):
            return _job_ref(service.start_mask(body))

    @app.get("/api/jobs/{job_id}", response_model=schemas.JobState)
    def job_state(job_id: str) -> dict[str, Any]:
        """Status, progress (done of total), partial text, then the result or the error."""
        state = jobs.snapshot(job_id)
        if state is None:
            raise NotFoundError(f"No job {job_id!r} (finished jobs are kept for a while).")
        return state

    @app.post("/api/jobs/{job_id}/cancel", response_model=schemas.JobState)
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued job now, or a running one at its next progress step."""
        if jobs.cancel(job_id) is None:
            raise NotFoundError(f"No job {job_id!r}.")
        return jobs.snapshot(job_id) or {}

    # ----- stored results (no model calls) -----------------------------------------------
    @app.get("/api/explanations/{explanation_id}", response_model=schemas.ExplanationView)
    def explanation(
        explanation_id: str,
        granularity: str | None = None,
        gamma: float = GAMMA,
        rows: str = "token",
    ) -> dict[str, Any]:
        """A stored explanation, re-aggregated to `granularity` (heatmap rows grouped by
        `rows`: token, word, sentence or line) without calling the model."""
        return service.view(explanation_id, granularity, gamma, rows)

    @app.get("/api/explanations/{explanation_id}/export")
    def export(
        explanation_id: str,
        format: Literal["json", "html"] = "json",
        granularity: str | None = None,
    ) -> Response:
        """Download an explanation as Attribution JSON or as a standalone HTML page."""
        content = service.export(explanation_id, format, granularity)
        name = f"promptxray-{explanation_id}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        media = "application/json" if format == "json" else "text/html"
        return Response(content, media_type=media, headers=headers)

    @app.post("/api/retarget", response_model=schemas.RetargetView)
    def retarget(body: schemas.RetargetRequest) -> dict[str, Any]:
        """Explain another span of a stored explanation's output from the ablations it kept
        (context_cite): no model call, answered at once, stored as a new explanation."""
        with naming_fields(body):
            return service.retarget(body)

    @app.get("/api/runs", response_model=list[schemas.RunSummary])
    def runs(limit: int = 100) -> list[dict[str, Any]]:
        """The history, newest first."""
        return store.list_runs(max(1, min(limit, 1000)))

    @app.get("/api/runs/{run_id}", response_model=schemas.RunDetail)
    def run_detail(run_id: str) -> dict[str, Any]:
        """One run with all its explanations (settings only) and mask-and-regenerate results."""
        return service.run_detail(run_id)

    @app.delete("/api/runs/{run_id}", status_code=204)
    def delete_run(run_id: str) -> Response:
        if not store.delete_run(run_id):
            raise NotFoundError(f"No run {run_id!r} in the history.")
        return Response(status_code=204)

    @app.get("/api/compare", response_model=schemas.CompareView)
    def compare(
        a: str = Query(max_length=200, description="RUN, RUN:EXPLANATION or EXPLANATION"),
        b: str = Query(max_length=200, description="the other side, same forms"),
        granularity: str | None = None,
        gamma: float = GAMMA,
    ) -> dict[str, Any]:
        """Two runs or explanations side by side: diffs, one colour scale, score changes."""
        return service.compare(a, b, granularity, gamma)

    @app.get("/api/compare/choices", response_model=list[schemas.CompareChoice])
    def compare_choices() -> list[dict[str, Any]]:
        """Every explanation in the history, newest first, as the compare view lists them."""
        return service.compare_choices()

    return app


def _job_ref(job: Any) -> dict[str, str]:
    return {"job_id": job.id, "status": job.status}


def _install_guards(app: FastAPI, guard: Guard) -> None:
    """Host allowlist, same-origin writes, access token; then the security headers."""

    @app.middleware("http")
    async def guards(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host")
        refusal = guard.host_refusal(host)
        if refusal is not None:
            # A person who typed the address gets a page saying what to do; API clients JSON.
            if "text/html" in request.headers.get("accept", ""):
                return HTMLResponse(refusal_page(refusal), status_code=400)
            return JSONResponse({"detail": refusal}, status_code=400)
        if guard.cross_origin(request.method, request.headers.get("origin"), host):
            detail = "Cross-origin requests are refused: use the page this server serves."
            return JSONResponse({"detail": detail}, status_code=403)
        if request.url.path.startswith("/api/") and not guard.token_ok(
            dict(request.headers), request.query_params.get("token")
        ):
            detail = (
                "This server needs its access token: open the address it printed at start "
                "(…/?token=…), or send the header Authorization: Bearer TOKEN."
            )
            return JSONResponse(
                {"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _install_error_handlers(app: FastAPI) -> None:
    """Every error body is {"detail": "<one readable line>"}; a 4xx about one request field
    also says which (`field`, the name the client sent; null when none applies)."""

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0])}, status_code=404)

    @app.exception_handler(FieldError)
    async def field_error(_: Request, exc: FieldError) -> JSONResponse:
        return _user_error(exc.error, exc.field)

    @app.exception_handler(PromptXrayError)
    async def user_error(request: Request, exc: PromptXrayError) -> JSONResponse:
        return _user_error(exc, query_field(exc, request.query_params))

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        field, detail = validation_detail(exc.errors())
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": validation_line(e)[1]}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail, "field": field, "errors": errors}, status_code=422)


def _user_error(exc: PromptXrayError, field: str | None) -> JSONResponse:
    # 409: the request is fine but conflicts with how the stored result was computed.
    status = 409 if isinstance(exc, RegroupRefusedError) else 400
    return JSONResponse({"detail": str(exc), "field": field}, status_code=status)
