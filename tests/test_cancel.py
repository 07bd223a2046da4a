"""A cancelled job stops within seconds, even on a slow model with long batched work.

Cancelling is checked in the progress callback, which batched methods call once
per batch; so what these tests pin down is that no batch holds much work. The
tiny model is slowed to a fixed cost per computed token position, so an uncapped
batch of 16 long variants would take several seconds.
"""

import time

import pytest
from conftest import make_tiny_lm

from promptxray import api, build_problem
from promptxray.model.scoring import CPU_BATCH_TOKENS, batches_by_length
from promptxray.server.jobs import CANCELLED, QUEUED, RUNNING, JobQueue

SECONDS_PER_TOKEN = 3e-3  # slowed forward: 16 rows x 120 tokens would take ~6 s
PROMPT = " ".join(f"Sentence {i} talks about the weather and the sea." for i in range(12))


@pytest.fixture(scope="module")
def slow_lm():
    lm = make_tiny_lm()
    inner = lm.model.forward

    def slow_forward(*args, **kwargs):
        given = kwargs.get("input_ids")
        given = given if given is not None else kwargs["inputs_embeds"]
        time.sleep(SECONDS_PER_TOKEN * given.shape[0] * given.shape[1])
        return inner(*args, **kwargs)

    lm.model.forward = slow_forward
    return lm


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("leave_one_out", {}),
        ("xprompt", {"k": 2}),
        ("integrated_gradients", {"steps": 64}),
        ("context_cite", {}),
    ],
)
def test_a_cancelled_job_stops_within_seconds(slow_lm, method, params):
    problem = build_problem(slow_lm, PROMPT, target=" The sea was calm.")
    request = api.check_request(method, "word", params=params)
    jobs = JobQueue()
    job = jobs.submit(method, lambda ctx: api.run(slow_lm, problem, request, progress=ctx.progress))
    deadline = time.monotonic() + 60
    while jobs.get(job.id).done == 0:  # mid-run: at least one batch reported
        assert time.monotonic() < deadline and jobs.get(job.id).status in (QUEUED, RUNNING)
        time.sleep(0.01)
    asked = time.time()  # the clock Job.finished uses
    jobs.cancel(job.id)
    final = jobs.wait(job.id, timeout=30)
    stopped = final.finished - asked
    jobs.shutdown()
    assert final.status == CANCELLED
    assert final.done < final.total  # it was cut short, not finished
    assert stopped < 5.0, f"{method} took {stopped:.1f} s to stop"
    print(f"{method}: stopped {stopped:.2f} s after cancel, at {final.done}/{final.total}")


def test_cpu_batches_hold_a_bounded_number_of_token_positions():
    lengths = [300, 290, 200, 120, 110, 100, 90, 30, 30, 30]
    batches = batches_by_length(lengths, 16, max_tokens=CPU_BATCH_TOKENS)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= CPU_BATCH_TOKENS
    assert batches_by_length(lengths, 16) == batches_by_length(lengths, 16, max_tokens=None)


def test_smaller_batches_change_no_score(tiny_lm):
    """The cap only regroups rows: scores equal those of one-at-a-time batches."""
    problem = build_problem(tiny_lm, PROMPT, target=" The sea was calm.")
    capped = api.attribute(tiny_lm, problem, "leave_one_out", "word")
    single = api.attribute(tiny_lm, problem, "leave_one_out", "word", batch_size=1)
    assert capped.scores == pytest.approx(single.scores, abs=1e-4)
