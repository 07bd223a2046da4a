"""The page's server in a thread of the calling process, on a free loopback port.

`serve` is for a person: it blocks until Ctrl+C. Programs that drive the page from
the same process (the browser tests, the latency benchmark, the README picture
script) need it running beside them and its address before they start; this is
their one way to get that. The socket is bound here, before the server starts, so
the port cannot be taken by someone else between choosing it and listening on it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

LOOPBACK = "127.0.0.1"


@contextmanager
def serve_in_thread(app: FastAPI, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a daemon thread; yield its address, stop on exit.

    Raises RuntimeError when the server has not started within `start_timeout` seconds
    (or its thread died while starting).
    """
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning")
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[listener])
        except BaseException as exc:  # uvicorn exits (SystemExit) when the app cannot load
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                cause = failed[0] if failed else None
                raise RuntimeError("the prompt debugger's server did not start") from cause
            time.sleep(0.05)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
