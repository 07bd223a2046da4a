"""Who may talk to the server: a Host allowlist, an access token, same-origin writes.

The server runs a model and keeps a history on the user's machine, so a web page
the user happens to visit must not be able to drive it:

- **Host allowlist.** A DNS-rebinding page reaches 127.0.0.1 under its own name
  (``Host: attacker.example``). Every request whose Host is not the bound address,
  a loopback name, or one the user allowed gets 400, on every route.
- **Access token.** On a non-loopback bind anyone on the network can connect, so
  every ``/api`` request must carry the token (like Jupyter's): as
  ``Authorization: Bearer``, ``X-Promptxray-Token`` or ``?token=`` (export links
  are plain downloads and cannot set headers).
- **Same-origin writes.** A POST or DELETE whose ``Origin`` is another site is
  refused (403); no CORS header is ever sent, so browsers also block reads.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("0.0.0.0", "::", "")
TOKEN_HEADER = "x-promptxray-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """True when only this machine can reach `host` (a loopback name or address)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token (URL-safe, 192 bits), printed once at start."""
    return secrets.token_urlsafe(24)


def host_name(header: str) -> str:
    """The host part of a Host header, lower-cased, port and IPv6 brackets removed."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:  # name:port; a bare IPv6 address has several colons
        return value.split(":", 1)[0]
    return value


def _machine_names() -> set[str]:
    """This machine's name and addresses: what other hosts type to reach a wildcard bind."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    names.update(str(info[4][0]).lower() for info in infos)
    return names


def allowed_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names the server answers to: the bound address, loopback, and the extras.

    A wildcard bind (0.0.0.0, ::) answers to this machine's own names as well,
    since that is how the other machines it was opened to will address it.
    """
    names = {*LOOPBACK_NAMES, host_name(host) if host not in _WILDCARDS else ""}
    names.update(host_name(h) for h in extra if h.strip())
    if host in _WILDCARDS:
        names.update(_machine_names())
    names.discard("")
    return frozenset(names)


@dataclass(frozen=True)
class Guard:
    """The checks one app applies to every request; `token` None means none is needed."""

    hosts: frozenset[str]
    token: str | None

    def host_refusal(self, host_header: str | None) -> str | None:
        """Why the Host header is refused (a sentence), or None when it is allowed."""
        name = host_name(host_header or "")
        if name in self.hosts:
            return None
        shown = host_header or "(none)"
        return (
            f"Host {shown!r} is not allowed: this server answers to "
            f"{', '.join(sorted(self.hosts))}. Start it with --allowed-host {name or 'NAME'} "
            "to allow another name."
        )

    def token_ok(self, headers: dict[str, str], query_token: str | None) -> bool:
        """True when no token is needed or the request carries the right one."""
        if self.token is None:
            return True
        given = headers.get(TOKEN_HEADER) or query_token or ""
        auth = headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return secrets.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def cross_origin(method: str, origin: str | None, host_header: str | None) -> bool:
        """True for a state-changing request sent by a page of another origin."""
        if method.upper() in SAFE_METHODS or not origin:
            return False
        if origin == "null":  # sandboxed frames and file:// pages
            return True
        return urlsplit(origin).netloc.lower() != (host_header or "").lower()
