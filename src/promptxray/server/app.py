"""The prompt debugger's HTTP side: JSON API, static page, error mapping.

Endpoints check the request (cheap: tokeniser only) and answer 4xx at once when
it is wrong; the model work goes to the job queue and the page polls it. The
model is chosen when the server starts, never by a request, and no endpoint
takes a file path from the client: history lives in the server's own data dir.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..api import check_request
from ..attribution import Attribution
from ..errors import InvalidParameterError, PromptXrayError, RegroupRefusedError
from ..methods import REGISTRY
from ..model import LanguageModel
from ..segments import GRANULARITIES
from ..targets import build_problem
from . import schemas
from .jobs import JobQueue
from .store import HistoryStore
from .tasks import explain_job, generate_job, mask_job
from .views import explanation_view, export_html

STATIC_DIR = Path(__file__).parent / "static"

# The page loads nothing from elsewhere and runs no inline script, so an injected
# tag in a prompt could not execute even if some text escaped the DOM builders.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# Methods in the order the page lists them; any other registered method follows.
_METHOD_ORDER = ("grad_norm", "grad_x_input", "integrated_gradients", "leave_one_out", "xprompt")


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("promptxray"))


def create_app(lm: LanguageModel, data_dir: Path | str | None = None) -> FastAPI:
    """An app serving one loaded model; history goes to `data_dir` (default: user data dir)."""
    store = HistoryStore(Path(data_dir) if data_dir is not None else default_data_dir())
    jobs = JobQueue()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(
        title="promptxray prompt debugger",
        version=__version__,
        description=(
            "Generate, explain which prompt parts drive the output, mask them and "
            "regenerate. Long work runs as jobs: submit, then poll /api/jobs/{id}."
        ),
        lifespan=lifespan,
    )
    app.state.lm, app.state.store, app.state.jobs = lm, store, jobs
    _install_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # ----- page ---------------------------------------------------------------------
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ----- facts --------------------------------------------------------------------
    @app.get("/api/info", response_model=schemas.InfoResponse)
    def info() -> dict[str, Any]:
        """The loaded model, the methods and granularities the page can offer."""
        names = [n for n in _METHOD_ORDER if n in REGISTRY]
        names += sorted(n for n in REGISTRY if n not in _METHOD_ORDER)
        methods = [
            {
                "name": n,
                "family": str(REGISTRY[n].family),
                "aggregation": str(REGISTRY[n].aggregation),
                "signed": REGISTRY[n].signed,
                "token_level": REGISTRY[n].regroupable,
                "description": REGISTRY[n].description,
                "params": [p.as_dict() for p in REGISTRY[n].param_info()],
            }
            for n in names
        ]
        return {
            "model": lm.name,
            "max_context": lm.max_context,
            "methods": methods,
            "granularities": list(GRANULARITIES),
            "data_dir": str(store.path.parent),
        }

    # ----- jobs ---------------------------------------------------------------------
    @app.post("/api/generate", response_model=schemas.JobRef, status_code=202)
    def generate(body: schemas.GenerateRequest) -> dict[str, str]:
        """Start generating the model's greedy output; poll the job for text as it grows."""
        encoding = lm.encode_prompt(body.prompt, body.system_prompt)  # 400 if too long
        fn = generate_job(
            lm, store, body.prompt, body.system_prompt, encoding.ids, body.max_new_tokens
        )
        return _job_ref(jobs.submit("generate", fn))

    @app.post("/api/explain", response_model=schemas.JobRef, status_code=202)
    def explain(body: schemas.ExplainRequest) -> dict[str, str]:
        """Explain all of a run's output, or a character span of it, with one method."""
        run = _run_or_404(store, body.run_id)
        request = check_request(body.method, body.granularity, None, body.method_params())
        span = tuple(body.span) if body.span is not None else None
        problem = build_problem(
            lm,
            run["prompt"],
            system_prompt=run["system_prompt"],
            output_ids=run["output_ids"],
            span=span,
        )
        request.units(problem)  # 400 now (e.g. k larger than the unit count), not in the job
        params = request.params.model_dump(mode="json")
        settings = {
            "method": body.method,
            "granularity": body.granularity,
            "span": list(span) if span else None,
            "matrix": body.matrix,
            "params": params,
        }
        return _job_ref(
            jobs.submit("explain", explain_job(lm, store, run["id"], problem, settings, request))
        )

    @app.post("/api/mask", response_model=schemas.JobRef, status_code=202)
    def mask(body: schemas.MaskRequest) -> dict[str, str]:
        """Remove the top-k units (or the listed ones) and regenerate; reports PR and KL."""
        stored = _explanation_or_404(store, body.explanation_id)
        attr: Attribution = stored["attribution"]
        if body.granularity and body.granularity != attr.granularity:
            attr = attr.aggregate(body.granularity)
        n_units = len(attr.units)
        if (body.units is None) == (body.top_k is None):
            raise InvalidParameterError("Give either the units to remove or top_k, not both.")
        if body.top_k is not None:
            if body.top_k > n_units:
                raise InvalidParameterError(
                    f"top_k is {body.top_k} but there are only {n_units} units."
                )
            masked = attr.ranking("support")[: body.top_k]
        else:
            masked = sorted(set(body.units or []))
            if not masked:
                raise InvalidParameterError("Pick at least one unit to remove.")
            bad = [i for i in masked if not 0 <= i < n_units]
            if bad:
                raise InvalidParameterError(
                    f"Unit index {bad[0]} is out of range: there are {n_units} units."
                )
        run = _run_or_404(store, stored["run_id"])
        problem = build_problem(
            lm,
            run["prompt"],
            system_prompt=run["system_prompt"],
            output_ids=run["output_ids"],
            span=attr.target_span,
        )
        fn = mask_job(lm, store, run, body.explanation_id, attr, problem, masked, body.operator)
        return _job_ref(jobs.submit("mask", fn))

    @app.get("/api/jobs/{job_id}", response_model=schemas.JobState)
    def job_state(job_id: str) -> dict[str, Any]:
        """Status, progress (done of total), partial text, then the result or the error."""
        state = jobs.snapshot(job_id)
        if state is None:
            raise HTTPException(404, f"No job {job_id!r} (finished jobs are kept for a while).")
        return state

    @app.post("/api/jobs/{job_id}/cancel", response_model=schemas.JobState)
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued job now, or a running one at its next progress step."""
        if jobs.cancel(job_id) is None:
            raise HTTPException(404, f"No job {job_id!r}.")
        return jobs.snapshot(job_id) or {}

    # ----- stored results (no model calls) -----------------------------------------------
    @app.get("/api/explanations/{explanation_id}", response_model=schemas.ExplanationView)
    def explanation(explanation_id: str, granularity: str | None = None) -> dict[str, Any]:
        """A stored explanation, re-aggregated to `granularity` without calling the model."""
        stored = _explanation_or_404(store, explanation_id)
        attr: Attribution = stored["attribution"]
        if granularity and granularity != attr.granularity:
            attr = attr.aggregate(granularity)
        return explanation_view(explanation_id, stored["run_id"], attr, stored["settings"])

    @app.get("/api/explanations/{explanation_id}/export")
    def export(
        explanation_id: str,
        format: Literal["json", "html"] = "json",
        granularity: str | None = None,
    ) -> Response:
        """Download an explanation as Attribution JSON or as a standalone HTML page."""
        stored = _explanation_or_404(store, explanation_id)
        attr: Attribution = stored["attribution"]
        if granularity and granularity != attr.granularity:
            attr = attr.aggregate(granularity)
        name = f"promptxray-{explanation_id}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "json":
            return Response(attr.to_json(indent=2), media_type="application/json", headers=headers)
        return Response(export_html(attr), media_type="text/html", headers=headers)

    @app.get("/api/runs", response_model=list[schemas.RunSummary])
    def runs(limit: int = 100) -> list[dict[str, Any]]:
        """The history, newest first."""
        return store.list_runs(max(1, min(limit, 1000)))

    @app.get("/api/runs/{run_id}", response_model=schemas.RunDetail)
    def run_detail(run_id: str) -> dict[str, Any]:
        """One run with its explanations (settings only) and mask-and-regenerate results."""
        run = _run_or_404(store, run_id)
        run.pop("output_ids")
        return {
            **run,
            "explanations": store.list_explanations(run_id),
            "edits": store.list_edits(run_id),
        }

    @app.delete("/api/runs/{run_id}", status_code=204)
    def delete_run(run_id: str) -> Response:
        if not store.delete_run(run_id):
            raise HTTPException(404, f"No run {run_id!r} in the history.")
        return Response(status_code=204)

    return app


def _job_ref(job: Any) -> dict[str, str]:
    return {"job_id": job.id, "status": job.status}


def _run_or_404(store: HistoryStore, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"No run {run_id!r} in the history.")
    return run


def _explanation_or_404(store: HistoryStore, explanation_id: str) -> dict[str, Any]:
    stored = store.get_explanation(explanation_id)
    if stored is None:
        raise HTTPException(404, f"No explanation {explanation_id!r} in the history.")
    return stored


def _install_error_handlers(app: FastAPI) -> None:
    """Every error body is {"detail": "<one readable sentence>"} (plus `errors` for 422)."""

    @app.exception_handler(PromptXrayError)
    async def user_error(_: Request, exc: PromptXrayError) -> JSONResponse:
        # 409: the request is fine but conflicts with how the stored result was computed.
        status = 409 if isinstance(exc, RegroupRefusedError) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": _clean(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"detail": detail or "Invalid request.", "errors": errors}, status_code=422
        )


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")
