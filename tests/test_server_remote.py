"""Remote use works as printed (issue 29, item 1), and DNS rebinding is still refused.

Every request here goes to the app in-process (TestClient, as if to 127.0.0.1); other
addresses appear only in the Host header. The machine's names and interfaces are
pinned (monkeypatched) where a test needs known values, and read for real where it
checks that what `serve` prints is what the app accepts.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from server_helpers import LOCAL

from promptxray.server import create_app, security, start_message
from promptxray.server.security import allowed_names, open_addresses, reach_names

ATTACKER = "attacker.example"
TOKEN = "remote-token-1"


@pytest.fixture()
def known_machine(monkeypatch):
    """A machine called box.lan with one LAN address, one IPv6 address, and loopback."""
    interfaces = {
        "lo": [
            SimpleNamespace(family=socket.AF_INET, address="127.0.0.1"),
            SimpleNamespace(family=socket.AF_INET6, address="::1"),
        ],
        "eth0": [
            SimpleNamespace(family=socket.AF_INET, address="192.0.2.7"),
            SimpleNamespace(family=socket.AF_INET6, address="fe80::1%eth0"),
            SimpleNamespace(family=socket.AF_PACKET, address="02:00:00:00:00:01"),
        ],
    }
    import psutil

    monkeypatch.setattr(psutil, "net_if_addrs", lambda: interfaces)
    monkeypatch.setattr(socket, "gethostname", lambda: "Box")
    monkeypatch.setattr(socket, "getfqdn", lambda *a: "box.lan")
    # the host name resolves to loopback only, as Debian's /etc/hosts makes it
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("127.0.1.1", 0))])


def test_a_wildcard_bind_answers_to_the_machines_names_and_interfaces(known_machine):
    assert reach_names() == ["box", "box.lan", "192.0.2.7", "fe80::1"]
    names = allowed_names("0.0.0.0")
    assert {"box", "box.lan", "192.0.2.7", "fe80::1", "localhost", "127.0.0.1", "::1"} <= names
    assert ATTACKER not in names and "0.0.0.0" not in names and "127.0.1.1" not in names
    # a specific address answers to the machine's names too, and to itself
    assert {"192.0.2.7", "box", "box.lan"} <= allowed_names("192.0.2.7")
    # loopback stays loopback: no machine names
    assert "box" not in allowed_names("127.0.0.1")


def test_the_printed_addresses_never_name_a_wildcard(known_machine):
    assert open_addresses("0.0.0.0", 8000) == [
        "http://box:8000/",
        "http://box.lan:8000/",
        "http://192.0.2.7:8000/",
    ]  # an IPv4 bind is not reached over IPv6
    assert "http://[fe80::1]:8000/" in open_addresses("::", 8000)
    assert open_addresses("192.0.2.7", 8000)[0] == "http://192.0.2.7:8000/"
    assert open_addresses("127.0.0.1", 8000) == ["http://127.0.0.1:8000/"]
    text = start_message("m", "0.0.0.0", 8000, SimpleNamespace(), TOKEN)
    assert f"at http://box:8000/?token={TOKEN}" in text
    assert f"also at http://192.0.2.7:8000/?token={TOKEN}" in text
    assert "0.0.0.0" not in text.split("note:")[0]


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_every_printed_address_opens_the_page_and_the_api(wordy_lm, tmp_path, bind):
    """Read for real: each address `serve` prints passes the app's Host check as printed."""
    app = create_app(wordy_lm, tmp_path, host=bind, token=TOKEN)
    urls = open_addresses(bind, 8000)
    assert urls and not any(w in url for url in urls for w in ("0.0.0.0", "[::]"))
    with TestClient(app, base_url=LOCAL) as client:
        for url in urls:
            host = urlsplit(url).netloc
            page = client.get("/", headers={"host": host, "accept": "text/html"})
            assert page.status_code == 200, (url, page.text[:200])
            info = client.get(f"/api/info?token={TOKEN}", headers={"host": host})
            assert info.status_code == 200, url
            assert client.get("/api/info", headers={"host": host}).status_code == 401


def test_allowed_host_names_pass_and_foreign_ones_still_do_not(wordy_lm, tmp_path, known_machine):
    app = create_app(
        wordy_lm, tmp_path, host="0.0.0.0", token=TOKEN, allowed_hosts=["debugger.example.org"]
    )
    headers = {"authorization": f"Bearer {TOKEN}"}
    with TestClient(app, base_url=LOCAL) as client:
        for host in (
            "box:8000",
            "box.lan",
            "192.0.2.7:8000",
            "[fe80::1]:8000",
            "debugger.example.org",
            "localhost:8000",
        ):
            assert client.get("/api/info", headers={**headers, "host": host}).status_code == 200
        for host in (ATTACKER, "0.0.0.0:8000", "192.0.2.8", "box.lan.attacker.example"):
            refused = client.get("/api/info", headers={**headers, "host": host})
            assert refused.status_code == 400, host
            assert "--allowed-host" in refused.json()["detail"]


def test_a_refused_host_shows_a_browser_a_short_page_and_a_client_json(wordy_lm, tmp_path):
    app = create_app(wordy_lm, tmp_path)
    with TestClient(app, base_url=LOCAL) as client:
        browser = client.get("/", headers={"host": f"{ATTACKER}:8000", "accept": "text/html"})
        assert browser.status_code == 400
        assert browser.headers["content-type"].startswith("text/html")
        assert "--allowed-host NAME" in browser.text and "<script" not in browser.text
        assert f"{ATTACKER}:8000" in browser.text
        script = client.get("/api/info", headers={"host": ATTACKER})
        assert script.status_code == 400 and script.headers["content-type"] == "application/json"
        assert "--allowed-host" in script.json()["detail"]
    # the Host header is the attacker's text: it is escaped in the page, never markup
    page = security.refusal_page("Host '<img src=x onerror=alert(1)>' is not allowed")
    assert "<img" not in page and "&lt;img" in page
