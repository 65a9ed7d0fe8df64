"""The documented production front (deploy/nginx.conf) in front of the Procfile's gunicorns
(issue 11, item 2): 50 slowloris connections, half sending a header line every 2 s and half
dripping a POST body to the notify endpoint, leave the site answering; the same 50 against a
bare gunicorn take it offline (the attack this front exists for). Each surface is served only
on its own server block, and (issue 8b) each gunicorn behind refuses the other's surface
itself. Runs nginx from Debian's package; skipped with a message without it."""

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from devstack.processes import wait_for_port
from devstack.redis import free_port
from devstack.settle import wait_until

pytestmark = pytest.mark.e2e

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
SLOW_CLIENTS = 50
ATTACK_SECONDS = 12  # each slow client's life: bounded
LINE_EVERY = 2.0  # seconds between a slow client's header lines (or body bytes)
PROBE_TIMEOUT = 2.0


@pytest.fixture
def front(tmp_path, start_stack):
    """``(stack, public_url, api_url)``: web and payments gunicorns, and nginx running
    deploy/nginx.conf with only its ports and scratch paths changed."""
    if NGINX is None:
        pytest.skip("nginx is not installed: apt-get install -y nginx (the production front)")
    stack = start_stack(processes=("web", "payments"))
    public, api = free_port(), free_port()
    text = CONFIG.read_text()
    for old, new in {
        "127.0.0.1:8000": f"127.0.0.1:{stack.ports['web']}",
        "127.0.0.1:8001": f"127.0.0.1:{stack.ports['payments']}",
        "listen 80;": f"listen 127.0.0.1:{public};",
        "listen 8080;": f"listen 127.0.0.1:{api};",
        "/tmp/recharge-nginx": str(tmp_path / "nginx"),
    }.items():
        text = text.replace(old, new)
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    log = open(tmp_path / "nginx.log", "wb")  # noqa: SIM115 - the child writes it till the end
    nginx = subprocess.Popen([NGINX, "-c", str(config), "-p", str(tmp_path)], stderr=log)
    try:
        wait_for_port(public, process=nginx)
        yield stack, f"http://127.0.0.1:{public}", f"http://127.0.0.1:{api}"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        log.close()


def slow_client(port: int, request: bytes, until: float) -> None:
    """Send ``request`` one line (or, for a body, one byte) every LINE_EVERY seconds until
    ``until``, never finishing it."""
    pieces = request.split(b"\r\n") if b"\r\n\r\n" not in request else list(request)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for piece in pieces:
                if time.monotonic() > until:
                    return
                sock.sendall(piece if isinstance(piece, bytes) else bytes([piece]))
                time.sleep(LINE_EVERY)
    except OSError:
        return  # closed by the server's timeout: what a front should do


def attack(port: int, until: float) -> list[threading.Thread]:
    """Half slow headers (a request never finished), half a slow body to the notify endpoint."""
    headers = b"GET /login/ HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 100
    body = (
        b"POST /api/accounts/notify/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b"{" * 1000
    )
    threads = [
        threading.Thread(target=slow_client, args=(port, body if n % 2 else headers, until))
        for n in range(SLOW_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    return threads


def probes(url: str, until: float) -> list[float | None]:
    """GET ``url`` once a second until ``until``: each answer's seconds, None for none."""
    seconds = []
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            ok = requests.get(url, timeout=PROBE_TIMEOUT).status_code == 200
        except requests.RequestException:
            ok = False
        seconds.append(time.monotonic() - started if ok else None)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return seconds


def under_attack(attacked_port: int, probe_url: str) -> list[float | None]:
    """Probe answers while 50 slow clients hold ``attacked_port`` (after a warm-up: a fresh
    gunicorn's first requests load the application)."""
    wait_until(lambda: requests.get(probe_url, timeout=5).ok, timeout=30, what="warm-up")
    until = time.monotonic() + ATTACK_SECONDS
    threads = attack(attacked_port, until)
    time.sleep(LINE_EVERY)  # every slow client connected and holding
    try:
        return probes(probe_url, until - 1)
    finally:
        for thread in threads:
            thread.join(timeout=ATTACK_SECONDS + 10)


def test_the_production_front_stays_available_under_slowloris(front):
    """Through nginx every probe of the log-in page is answered (within PROBE_TIMEOUT, 2 s),
    while 50 slow clients hold connections to it."""
    _, public_url, _ = front
    port = int(public_url.rsplit(":", 1)[1])

    answered = under_attack(port, f"{public_url}/login/")

    assert answered and None not in answered, answered


def test_a_bare_gunicorn_is_taken_offline_by_the_same_attack(front):
    """The control: the same 50 slow clients straight at the web gunicorn (2 workers × 8
    threads) leave probes unanswered. This is why production serves through the front."""
    stack, _, _ = front
    web_url = f"http://127.0.0.1:{stack.ports['web']}"

    answered = under_attack(stack.ports["web"], f"{web_url}/login/")

    assert None in answered, answered


def test_each_surface_is_served_only_on_its_own_server(front):
    """The public server refuses the merchant API; the API server serves nothing else."""
    _, public_url, api_url = front

    assert requests.get(f"{public_url}/login/", timeout=5).status_code == 200
    assert requests.get(f"{public_url}/api/payments/recharges/x/", timeout=5).status_code == 404
    assert requests.get(f"{api_url}/api/payments/recharges/x/", timeout=5).status_code == 401
    assert requests.get(f"{api_url}/login/", timeout=5).status_code == 404
    assert re.search(r"openapi", requests.get(f"{api_url}/api/schema/", timeout=5).text)


def test_each_gunicorn_serves_only_its_own_surface(start_stack):
    """Without the front, straight at the Procfile's gunicorns (SERVED_SURFACE on each line):
    the web server answers the log-in page, the admin, the notify endpoint and static files
    but not the merchant API; the payments server answers the merchant API, its schema and
    Swagger UI but not the log-in page, the admin or the notify endpoint."""
    stack = start_stack(processes=("web", "payments"))
    web, api = stack.web_url, stack.payments_url

    def status(url: str, method: str = "GET") -> int:
        body = {} if method == "POST" else None  # a JSON object: the endpoints' media type
        response = requests.request(method, url, json=body, timeout=10, allow_redirects=False)
        return response.status_code

    assert status(f"{web}/login/") == 200
    assert status(f"{web}/admin/") == 302  # to the admin's log-in: served
    assert status(f"{web}/api/accounts/notify/", "POST") == 400  # no signature: it ran
    assert status(f"{web}/static/admin/css/base.css") == 200
    refused = requests.get(f"{web}/api/payments/recharges/x/", timeout=10)
    assert refused.status_code == 404 and refused.json() == {"detail": "Not found."}
    assert status(f"{web}/api/payments/recharges/", "POST") == 404

    assert status(f"{api}/api/payments/recharges/x/") == 401  # no key: it ran
    assert re.search(r"openapi", requests.get(f"{api}/api/schema/", timeout=10).text)
    assert status(f"{api}/api/docs/") == 200
    for path in ("/login/", "/admin/", "/admin/login/", "/", "/pay/x/"):
        assert status(f"{api}{path}") == 404, path
    assert status(f"{api}/api/accounts/notify/", "POST") == 404
