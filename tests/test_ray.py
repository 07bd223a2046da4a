"""Ray scale-out: the same rows as one process, resume, a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import conftest
import pytest
from conftest import make_tiny_lm

from promptxray.distributed import RayOptions
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.evaluation.store import DB_NAME

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

PROMPTS = [
    "Answer in one word: What color is the sky?",
    "Write a six-word story about love",
    "Name a fruit that is yellow.",
    "Say hello to the team in French.",
    "List two colors of a rainbow.",
    "What is two plus two?",
]


def tiny_loader():
    """The tiny random Llama of conftest, built inside the worker."""
    return make_tiny_lm()


@pytest.fixture(scope="module")
def local_ray():
    import sys

    # Workers cannot import the test modules: send tiny_loader and its helper by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(conftest)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS))
    )
    return path


CONFIG = dict(methods=["leave_one_out", "grad_norm"], k=2, max_new_tokens=4, use_sbert=False)
METRICS = ("pr", "pr_seq_log10", "kl", "bleu", "rouge_f", "comprehensiveness", "sufficiency")


def stored_rows(out: Path) -> dict[tuple, dict]:
    conn = sqlite3.connect(out / DB_NAME)
    conn.row_factory = sqlite3.Row
    rows = {(r["prompt_key"], r["method"]): dict(r) for r in conn.execute("SELECT * FROM rows")}
    conn.close()
    return rows


@pytest.mark.parametrize(
    "methods",
    [CONFIG["methods"], ["attnlrp", "context_cite"]],  # the methods of issue 30 too
    ids=["loo-grad_norm", "attnlrp-context_cite"],
)
def test_ray_rows_equal_single_process_rows(local_ray, data, tmp_path, methods):
    config = {**CONFIG, "methods": methods}
    single = run_evaluation(
        data, tmp_path / "one", EvalConfig(**config), lm=tiny_loader, show_progress=False
    )
    spread = run_evaluation(
        data,
        tmp_path / "ray",
        EvalConfig(**config),
        lm=tiny_loader,
        show_progress=False,
        ray=RayOptions(workers=2),
    )
    assert single.computed == spread.computed == 12 and not spread.errors
    one, two = stored_rows(tmp_path / "one"), stored_rows(tmp_path / "ray")
    assert one.keys() == two.keys()
    for key in one:
        assert one[key]["masked_units"] == two[key]["masked_units"]
        for metric in METRICS:
            assert two[key][metric] == pytest.approx(one[key][metric], abs=1e-5), (key, metric)


def test_a_killed_worker_loses_only_its_prompt(local_ray, data, tmp_path, monkeypatch):
    from promptxray import distributed

    actors, killed = [], []
    original = distributed.run_on_ray
    monkeypatch.setattr(
        distributed,
        "run_on_ray",
        lambda *a, **k: original(*a, **k, on_workers=actors.extend),
    )

    def kill_a_busy_worker(row):
        if not killed:  # after the first prompt lands, the other worker is mid-prompt
            pids = ray.get([actor.pid.remote() for actor in actors])
            os.kill(pids[1], signal.SIGKILL)
            killed.append(pids[1])

    report = run_evaluation(
        data,
        tmp_path / "run",
        EvalConfig(**CONFIG),
        lm=tiny_loader,
        show_progress=False,
        ray=RayOptions(workers=2),
        on_row=kill_a_busy_worker,
    )
    assert killed and report.computed == 12 and not report.errors
    rows = stored_rows(tmp_path / "run")
    assert len(rows) == 12 and not any(r["error"] for r in rows.values())


def test_a_stopped_driver_resumes_without_recomputing(local_ray, data, tmp_path):
    out = tmp_path / "resume"
    seen = []

    def stop_after_three_prompts(row):
        seen.append(row)
        if len(seen) == 6:
            raise KeyboardInterrupt  # as if the driver were killed here

    with pytest.raises(KeyboardInterrupt):
        run_evaluation(
            data,
            out,
            EvalConfig(**CONFIG),
            lm=tiny_loader,
            show_progress=False,
            ray=RayOptions(workers=2),
            on_row=stop_after_three_prompts,
        )
    committed = len(stored_rows(out))
    assert 6 <= committed < 12
    again = run_evaluation(
        data,
        out,
        EvalConfig(**CONFIG),
        lm=tiny_loader,
        show_progress=False,
        ray=RayOptions(workers=2),
    )
    assert again.reused == committed and again.computed == 12 - committed


def test_study_on_ray_stores_the_rows_one_process_stores(local_ray, tmp_path):
    from promptxray.study import StudyConfig, run_study

    rows = [
        {
            "id": f"r{i}",
            "task": "qa",
            "structure": s,
            "group": f"g{i}",
            "template": "{instruction} {input}",
            "slots": {"instruction": "Answer in one word:", "input": q},
            "checks": {"one_word": True},
        }
        for i, q in enumerate(["What color is the sky?", "What is ice?"])
        for s in ("first",)
    ]
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = StudyConfig(models=["tiny"], max_new_tokens=3)
    one = run_study(
        data, tmp_path / "one", config, loaders={"tiny": tiny_loader}, show_progress=False
    )
    two = run_study(
        data,
        tmp_path / "two",
        config,
        loaders={"tiny": tiny_loader},
        show_progress=False,
        ray=RayOptions(workers=2),
    )
    assert two.computed == 2 and not two.errors
    for a, b in zip(one.results, two.results, strict=True):
        assert a["payload"]["output"] == b["payload"]["output"]
        for part, share in a["payload"]["shares"].items():
            assert b["payload"]["shares"][part] == pytest.approx(share, abs=1e-5)


def test_a_running_head_passes_the_address_probe(local_ray):
    """The probe that refuses a dead address at once lets a live Ray head through."""
    from promptxray.ray_address import check_reachable

    address = ray.get_runtime_context().gcs_address
    check_reachable(address)
    check_reachable(f"127.0.0.1:{address.rsplit(':', 1)[1]}")
