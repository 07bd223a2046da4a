"""`serve_in_thread`: the page's server beside the caller, reachable, then really stopped."""

from __future__ import annotations

import json
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest

from promptxray.server import create_app, serve_in_thread


def info(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/info", timeout=10) as response:
        return json.loads(response.read().decode())


def refuses(url: str) -> bool:
    """True when nothing listens at the address any more."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_two_servers_answer_on_their_own_ports_and_stop_on_exit(tiny_lm, tmp_path):
    with serve_in_thread(create_app(tiny_lm, tmp_path / "a")) as a:
        with serve_in_thread(create_app(tiny_lm, tmp_path / "b")) as b:
            assert a.startswith("http://127.0.0.1:") and b.startswith("http://127.0.0.1:")
            assert a != b
            assert info(a)["model"] == info(b)["model"] == "tiny-random-llama"
        assert refuses(b)
        assert info(a)["model"] == "tiny-random-llama"  # the other one still serves
    assert refuses(a)


def test_a_server_that_cannot_start_is_an_error_not_a_hang():
    # an import string uvicorn cannot load: its thread ends before the server starts
    with pytest.raises(RuntimeError, match="did not start") as failure:
        with serve_in_thread("no_such_module_here:app", start_timeout=10):
            pass
    assert isinstance(failure.value.__cause__, SystemExit)  # uvicorn's own exit, kept as cause
