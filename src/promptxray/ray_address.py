"""Is a Ray cluster there? Asked in at most a few seconds, before anything opens or loads.

Given an address where no cluster answers, `ray.init` retries for many minutes and
prints a warning every few seconds. So a HOST:PORT (or ray://HOST:PORT) is probed
first, the way any gRPC client starts a conversation: a TCP connection, then the
HTTP/2 connection preface, which a Ray head (its GCS and its client server are
gRPC servers) answers at once with a SETTINGS frame. A refused connection, no
answer within the timeout, or an answer that is not HTTP/2 is one
`RayUnreachableError` naming the address and what to check. (Something that does
speak HTTP/2 at that port but is not Ray passes the probe; Ray then says so itself,
in its own time.)
"""

from __future__ import annotations

import socket
import time

from .errors import PromptXrayError

CONNECT_TIMEOUT_S = 5.0  # how long the address may take to answer, connection and preface
# The client preface (RFC 9113, 3.4) and an empty SETTINGS frame (9-byte frame header).
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4  # the frame type a server's preface starts with


class RayUnreachableError(PromptXrayError):
    """No Ray cluster answers at the address given."""


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, within about `timeout` seconds, an address where no Ray cluster answers.

    None and "local" start a Ray here and "auto" finds a running one (Ray says at
    once when there is none), so only a HOST:PORT (or ray://HOST:PORT) is probed.
    """
    if address is None or address in ("", "auto", "local"):
        return
    host, port = _host_port(address)
    reason = _probe(host, port, timeout)
    if reason is not None:
        raise RayUnreachableError(
            f"Cannot reach a Ray cluster at {address} ({reason}): check that the cluster is "
            "running (`ray status` on its head node), that this is the address its head "
            "printed, and that this machine may connect to that port; without an address a "
            "local Ray starts here.",
            param="ray_address",
        )


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # an IPv6 host is written [::1]:6379
    if not sep or not host or not port.isdigit():
        raise RayUnreachableError(
            f"The Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto): "
            "give the address the cluster's head node printed.",
            param="ray_address",
        )
    return host, int(port)


def _probe(host: str, port: int, timeout: float) -> str | None:
    """Why nothing Ray-like answers at host:port, or None when an HTTP/2 server does."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(_PREFACE)
            header = b""
            while len(header) < 9:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    return "it closed the connection without answering"
                header += chunk
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    if header[3] != _SETTINGS:
        return "something answers there, but not a Ray cluster"
    return None
