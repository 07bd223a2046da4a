"""Who may talk to the server: a Host allowlist, an access token, same-origin writes.

The server runs a model and keeps a history on the user's machine, so a web page
the user happens to visit must not be able to drive it:

- **Host allowlist.** A DNS-rebinding page reaches 127.0.0.1 under its own name
  (``Host: attacker.example``). Every request whose Host is not the bound address,
  a loopback name, or one the user allowed gets 400, on every route. A server bound
  beyond loopback also answers to the names other machines reach it by: this
  machine's host names and the addresses of its network interfaces (`reach_names`);
  a name behind a proxy or DNS alias is the user's to add (``--allowed-host``).
- **Access token.** On a non-loopback bind anyone on the network can connect, so
  every ``/api`` request must carry the token (like Jupyter's): as
  ``Authorization: Bearer``, ``X-Promptxray-Token`` or ``?token=`` (export links
  are plain downloads and cannot set headers).
- **Same-origin writes.** A POST or DELETE whose ``Origin`` is another site is
  refused (403); no CORS header is ever sent, so browsers also block reads.
"""

from __future__ import annotations

import html
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


def _interface_addresses() -> set[str]:
    """The IP addresses of this machine's network interfaces (IPv6 scope ids removed).

    A host name often resolves only to 127.0.1.1 (Debian's /etc/hosts), so the address
    another machine types comes from the interfaces themselves (psutil, already a
    dependency of the model stack), not from resolving our own name.
    """
    import psutil

    found = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(address.address.split("%", 1)[0].lower())
    return found


def reach_names() -> list[str]:
    """This machine's names and addresses, as another host would type them: its host
    names first, then its interface addresses (IPv4 before IPv6), loopback left out."""
    names = [socket.gethostname().lower(), socket.getfqdn().lower()]
    addresses = set(_interface_addresses())
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    addresses.update(str(info[4][0]).split("%", 1)[0].lower() for info in infos)
    ips = sorted(addresses, key=lambda a: (":" in a, a))
    reachable = [a for a in ips if not ipaddress.ip_address(a).is_loopback]
    return [n for n in dict.fromkeys(names) if n and not is_loopback(n)] + reachable


def allowed_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names the server answers to: the bound address, loopback, and the extras.

    A bind beyond loopback (0.0.0.0, ::, or one of this machine's addresses) answers to
    this machine's own names and addresses as well, since that is how the other
    machines it was opened to will address it.
    """
    names = {*LOOPBACK_NAMES, host_name(host) if host not in _WILDCARDS else ""}
    names.update(host_name(h) for h in extra if h.strip())
    if host in _WILDCARDS or not is_loopback(host):
        names.update(reach_names())
    names.discard("")
    return frozenset(names)


def open_addresses(host: str, port: int) -> list[str]:
    """The addresses (http://NAME:PORT/) that open the page as printed, best first.

    A loopback bind: that address. A wildcard bind: this machine's host name and its
    interface addresses (never 0.0.0.0, which no browser can be sent to elsewhere). A
    specific address: that one, then the host name.
    """
    if is_loopback(host):
        names = [host]
    elif host in _WILDCARDS:
        names = reach_names()
        if host == "0.0.0.0":  # an IPv4-only bind is not reached over IPv6
            names = [n for n in names if ":" not in n]
        names = names or ["localhost"]
    else:
        names = [host, *(n for n in reach_names() if not _is_ip(n))]
    return [f"http://{_bracketed(n)}:{port}/" for n in dict.fromkeys(names)]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _bracketed(name: str) -> str:
    return f"[{name}]" if ":" in name else name


def refusal_page(detail: str) -> str:
    """A refused Host as a browser shows it: a short page saying what to do."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>promptxray: address not allowed</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5'>"
        "<h1>This address is not one the promptxray server answers to</h1>"
        f"<p>{html.escape(detail)}</p>"
        "<p>Open one of the addresses <code>promptxray serve</code> printed when it started, "
        "or, when the server is reached through a proxy or another name, restart it with "
        "<code>--allowed-host NAME</code> for that name. Unknown names are refused so that "
        "other web sites cannot reach the server through your browser.</p></body></html>"
    )


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
