"""An unreachable Ray address: one clear error within seconds, before anything opens or loads.

Ray itself retries such a connection for many minutes, printing a warning every few
seconds. Nothing here starts Ray: the address is refused before `ray.init`. (That a
real Ray head passes the probe is checked in test_ray.py, which starts one.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from promptxray import cli as cli_module
from promptxray.distributed import RayOptions
from promptxray.errors import PromptXrayError
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.ray_address import RayUnreachableError, check_reachable
from promptxray.study import StudyConfig, run_study

pytest.importorskip("ray")  # without Ray the error is "not installed" (test_ray_missing)

DEAD = "127.0.0.1:1"  # port 1 on this machine: nothing listens there
QUICK_S = 10.0  # the bound the error must come within (the probe waits at most 5 s)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _refused_quickly(call) -> RayUnreachableError:
    started = time.perf_counter()
    with pytest.raises(RayUnreachableError) as caught:
        call()
    assert time.perf_counter() - started < QUICK_S
    error = caught.value
    assert isinstance(error, PromptXrayError) and error.param == "ray_address"
    message = str(error)
    assert "\n" not in message and DEAD in message and "ray status" in message
    return error


def test_evaluate_refuses_an_unreachable_address_before_loading(tmp_path):
    data = _write(tmp_path / "p.jsonl", [{"prompt": "Hello there"}])
    out = tmp_path / "out"
    _refused_quickly(
        lambda: run_evaluation(
            data,
            out,
            EvalConfig(methods=["grad_norm"], k=1, use_sbert=False),
            lm=lambda: pytest.fail("a model was loaded"),
            show_progress=False,
            ray=RayOptions(address=DEAD),
        )
    )
    assert not out.exists()  # no results folder, no SQLite file


def test_study_refuses_an_unreachable_address_before_loading(tmp_path):
    data = _write(tmp_path / "s.jsonl", [{"id": "a", "prompt": "Say hi."}])
    out = tmp_path / "out"
    _refused_quickly(
        lambda: run_study(
            data,
            out,
            StudyConfig(models=["tiny"], max_new_tokens=2),
            loaders={"tiny": lambda: pytest.fail("a model was loaded")},
            show_progress=False,
            ray=RayOptions(address=DEAD),
        )
    )
    assert not out.exists()


def test_a_ray_client_address_is_probed_too():
    _refused_quickly(lambda: check_reachable(f"ray://{DEAD}"))


@contextmanager
def _server(reply: bytes | None) -> Iterator[str]:
    """A local TCP server that answers each connection with `reply` (None: says nothing)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(64)  # the client's preface
                if reply is not None:
                    conn.sendall(reply)
                else:
                    done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        listener.close()


def test_an_http2_server_passes_the_probe():
    settings = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # what a gRPC server (Ray's head) sends first
    with _server(settings) as address:
        check_reachable(address)  # no error
        check_reachable(f"ray://{address}")


def test_a_port_that_accepts_but_never_answers_is_refused_at_the_timeout():
    with _server(None) as address:
        started = time.perf_counter()
        with pytest.raises(RayUnreachableError, match=r"no answer within 0\.5 s"):
            check_reachable(address, timeout=0.5)
        assert 0.4 < time.perf_counter() - started < 3


def test_a_port_that_answers_something_else_is_refused():
    with _server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as address:
        with pytest.raises(RayUnreachableError, match="answers there, but not a Ray cluster"):
            check_reachable(address)


@pytest.mark.parametrize("address", [None, "auto", "local"])
def test_a_local_or_found_cluster_is_left_to_ray(address):
    check_reachable(address)  # nothing to probe: no error, no wait


@pytest.mark.parametrize("address", ["127.0.0.1", "head:port", ":6379"])
def test_an_address_without_a_port_is_named(address):
    with pytest.raises(RayUnreachableError, match="is not HOST:PORT"):
        check_reachable(address)


def test_cli_evaluate_says_it_in_one_line(tmp_path):
    """Through the CLI as a user types it; a model that does not exist would be the error
    if the address were not refused first, before anything loads."""
    data = _write(tmp_path / "p.jsonl", [{"prompt": "Hello there"}])
    args = ["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--methods", "grad_norm"]
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli_module.app, [*args, "--model", "no-such-model-xyz", "--ray-address", DEAD]
    )
    assert time.perf_counter() - started < QUICK_S
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Cannot reach a Ray cluster at 127.0.0.1:1")
    assert not (tmp_path / "o").exists()
