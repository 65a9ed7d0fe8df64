"""The SSRF guard (notifications/netguard.py) and the delivery path that enforces it.

No test here ever reaches outside loopback: names resolve through the suite's fake DNS,
and the tripwire fixture fails any test that tries to connect anywhere else.
"""

import asyncio
import socket
import threading

import pytest
from django.utils import timezone

from notifications import delivery, http, netguard
from notifications.endpoints import endpoint_id_for
from notifications.models import DeliveryAttempt, Notification


@pytest.fixture
def production_policy(settings):
    """No private or loopback network allowed, as in production."""
    settings.NOTIFY_ALLOWED_NETWORKS = []


REFUSED_ADDRESSES = {
    "127.0.0.1": "127.0.0.1 is a loopback address",
    "127.255.0.9": "127.255.0.9 is a loopback address",
    "::1": "::1 is a loopback address",
    "10.0.0.1": "10.0.0.1 is a private address",
    "172.16.5.4": "172.16.5.4 is a private address",
    "192.168.1.1": "192.168.1.1 is a private address",
    "fd12:3456::1": "fd12:3456::1 is a private address",
    "169.254.169.254": "169.254.169.254 is a cloud metadata address",
    "169.254.170.2": "169.254.170.2 is a cloud metadata address",
    "100.100.100.200": "100.100.100.200 is a cloud metadata address",
    "fd00:ec2::254": "fd00:ec2::254 is a cloud metadata address",
    "169.254.1.1": "169.254.1.1 is a link-local address",
    "fe80::1": "fe80::1 is a link-local address",
    "224.0.0.1": "224.0.0.1 is a multicast address",
    "ff02::1": "ff02::1 is a multicast address",
    "0.0.0.0": "0.0.0.0 is an unspecified address",
    "::": ":: is an unspecified address",
    "100.64.0.1": "100.64.0.1 is not a publicly routable address",
    "192.0.2.10": "192.0.2.10 is a private address",
    "255.255.255.255": "255.255.255.255 is a private address",
    "::ffff:127.0.0.1": "::ffff:7f00:1 is a loopback address",
    "::ffff:169.254.169.254": "::ffff:a9fe:a9fe is a cloud metadata address",
    "2002:a00:1::": "2002:a00:1:: is a private address",
    "64:ff9b::a00:1": "64:ff9b::a00:1 is a private address",
}


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES.items())
def test_non_public_addresses_are_refused(production_policy, address, reason):
    """Loopback, private, link-local, multicast, unspecified, shared, documentation,
    broadcast and metadata addresses, also inside IPv4-mapped, 6to4 and NAT64 IPv6
    addresses: refused, with the category named."""
    assert netguard.address_refusal(address) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(production_policy, address):
    """A publicly routable address is a valid destination."""
    assert netguard.address_refusal(address) is None


def test_allow_list_opens_exactly_the_named_networks(settings):
    """NOTIFY_ALLOWED_NETWORKS opens the CIDRs it names (the development default: loopback)
    and nothing else; mapped IPv6 forms of an allowed IPv4 address are allowed too."""
    settings.NOTIFY_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]

    assert netguard.address_refusal("127.0.0.1") is None
    assert netguard.address_refusal("::1") is None
    assert netguard.address_refusal("::ffff:127.0.0.1") is None
    assert netguard.address_refusal("10.1.2.3") is None
    assert netguard.address_refusal("10.2.0.1") == "10.2.0.1 is a private address"
    assert netguard.address_refusal("169.254.169.254") == (
        "169.254.169.254 is a cloud metadata address"
    )


URLS = {
    "http://127.0.0.1/n": "127.0.0.1 is a loopback address",
    "http://2130706433/n": "127.0.0.1 is a loopback address",
    "http://0x7f.1/n": "127.0.0.1 is a loopback address",
    "http://[::1]:8000/n": "::1 is a loopback address",
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
    "http://10.0.0.1/n": "10.0.0.1 is a private address",
    "https://rebind.example/n": "rebind.example resolves to 10.0.0.1 is a private address",
    "https://metadata.example/n": (
        "metadata.example resolves to 169.254.169.254 is a cloud metadata address"
    ),
    "https://loopback.example/n": "loopback.example resolves to 127.0.0.1 is a loopback address",
    "https://mixed.example/n": "mixed.example resolves to 192.168.1.10 is a private address",
    "https://v6private.example/n": "v6private.example resolves to fd12:3456::1 is a private",
    "file:///etc/passwd": "must be an http:// or https:// URL with a host",
    "gopher://127.0.0.1:6379/_INFO": "must be an http:// or https:// URL with a host",
    "http://:80/n": "must be an http:// or https:// URL with a host",
}


@pytest.mark.parametrize(("url", "reason"), URLS.items())
def test_url_refusal_names_the_reason(production_policy, url, reason):
    """Literal addresses in any notation, and host names resolving to a blocked network
    (every address they resolve to is checked), are refused; so are other schemes."""
    assert reason in netguard.url_refusal(url)


def test_url_refusal_accepts_public_and_unresolvable_names(production_policy):
    """A name resolving to public addresses passes; one that does not resolve (yet) is not
    refused at creation: the check made when connecting decides."""
    assert netguard.url_refusal("https://merchant.example/notify") is None
    assert netguard.url_refusal("https://does-not-resolve.example/notify") is None


# --- at send time: the connection itself ----------------------------------------------------


def recording_server():
    """A loopback HTTP server that answers 200 and records every request it gets."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    received = []

    def serve():
        with server:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    data = conn.recv(65536)
                    received.append(data)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], received, server


def post(url):
    """One POST through the delivery client, as a worker makes it."""

    async def send():
        async with http.client_session(connect_timeout=1) as session:
            return await http.post(
                session, url, body=b"{}", headers={}, deadline=2, excerpt_bytes=64
            )

    return asyncio.run(send())


def test_refused_destination_is_a_failed_result_and_nothing_is_sent(production_policy):
    """A loopback receiver under production policy: a failed PostResult naming the reason,
    no exception, and the server receives nothing."""
    port, received, server = recording_server()

    result = post(f"http://127.0.0.1:{port}/notify")
    server.close()

    assert (result.ok, result.status_code) == (False, None)
    assert result.error == "refused destination: 127.0.0.1 is a loopback address"
    assert received == []


# Receivers under production policy that a POST, and a delivery, must refuse: the reason.
BLOCKED_DESTINATIONS = {
    "http://[::1%251]:9/notify": "::1%1 names a network interface (an IPv6 zone id)",
    "http://[::ffff:127.0.0.1%25eth0]/n": (
        "::ffff:7f00:1%eth0 names a network interface (an IPv6 zone id)"
    ),
    "http://127.0.0.1:9/notify": "127.0.0.1 is a loopback address",
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
    "http://10.0.0.1/notify": "10.0.0.1 is a private address",
    "https://rebind.example/notify": "rebind.example resolves to 10.0.0.1 is a private address",
    "https://mixed.example/notify": "mixed.example resolves to 192.168.1.10 is a private address",
}


@pytest.mark.parametrize(("url", "error"), BLOCKED_DESTINATIONS.items())
def test_blocked_destinations_are_never_connected_to(production_policy, url, error):
    """Loopback, metadata, private, and names resolving to them: refused before any socket
    connects (the tripwire fixture would fail the test otherwise)."""
    result = post(url)

    assert result.error == f"refused destination: {error}"


def test_dns_rebinding_is_caught_when_connecting(fake_dns, production_policy):
    """A name that resolved to a public address when the order was created but resolves to
    10.0.0.1 when the notification is sent: the send-time check refuses it."""
    fake_dns["flip.example"] = ["93.184.215.14"]
    assert netguard.url_refusal("https://flip.example/notify") is None
    fake_dns["flip.example"] = ["10.0.0.1"]

    result = post("https://flip.example/notify")

    assert (
        result.error
        == "refused destination: flip.example resolves to 10.0.0.1 is a private address"
    )


def test_connection_goes_to_the_checked_address_with_the_original_host(fake_dns):
    """The socket is opened to the address that was checked; the request still names the
    URL's host (Host header, and SNI for https)."""
    port, received, server = recording_server()
    fake_dns["wallet.example"] = ["127.0.0.1"]  # allowed by the development allow-list

    result = post(f"http://wallet.example:{port}/notify")
    server.close()

    assert (result.ok, result.status_code) == (True, 200)
    assert len(received) == 1
    assert f"Host: wallet.example:{port}".encode() in received[0]


def test_redirects_are_not_followed(production_policy, settings):
    """A receiver answering 302 to the metadata address: a failed attempt; the Location is
    never requested (the tripwire would catch it)."""
    settings.NOTIFY_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )

    threading.Thread(target=answer, daemon=True).start()

    result = post(f"http://127.0.0.1:{server.getsockname()[1]}/notify")

    assert (result.ok, result.status_code, result.error) == (False, 302, "HTTP 302")


def test_environment_proxies_are_ignored(production_policy, monkeypatch):
    """HTTP(S)_PROXY in the environment is not used: the guard checks the address actually
    connected to, which a proxy would hide (and the proxy itself is private here)."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")

    result = post("http://169.254.169.254/latest/meta-data/")

    assert result.error == "refused destination: 169.254.169.254 is a cloud metadata address"


def test_reply_is_read_only_up_to_the_excerpt(settings):
    """A receiver streaming a huge reply: only ``excerpt_bytes`` are read and kept."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                try:
                    for _ in range(100):
                        conn.sendall(b"x" * 65536)
                except OSError:
                    pass  # the client stopped reading and closed: what we want

    threading.Thread(target=answer, daemon=True).start()

    result = post(f"http://127.0.0.1:{server.getsockname()[1]}/notify")

    assert result.status_code == 200
    assert result.excerpt == "x" * 64


# --- the delivery service --------------------------------------------------------------------


@pytest.mark.parametrize(("target_url", "reason"), BLOCKED_DESTINATIONS.items())
def test_delivery_to_a_refused_destination_is_a_failed_attempt(
    merchant, production_policy, deliver_apply_async, target_url, reason
):
    """A delivery to a blocked target: a failed DeliveryAttempt with the reason, no HTTP
    status, the notification pending its retry; never an exception."""
    notification = Notification.objects.create(
        sender_key=merchant.app_id,
        subject="TX1",
        event_type="recharge.succeeded",
        target_url=target_url,
        endpoint_id=endpoint_id_for(sender_key=merchant.app_id, url=target_url),
        body="{}",
        created_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )

    [recorded] = delivery.deliveries_run(hints=[notification.pk])

    assert recorded.state == Notification.State.PENDING
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert (attempt.succeeded, attempt.status_code) == (False, None)
    assert attempt.error == f"refused destination: {reason}"
    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING
    assert notification.last_error == attempt.error


def test_a_slow_name_server_for_one_host_does_not_starve_the_others(fake_dns, monkeypatch):
    """Lookups block a thread each and cannot be cancelled: one host whose name server takes
    seconds holds at most its own few threads, and another host still resolves at once."""
    import time

    real_resolve = netguard.resolve

    def resolve(host, port):
        if host == "slow-dns.example":
            time.sleep(1.5)
        return real_resolve(host, port)

    monkeypatch.setattr(netguard, "resolve", resolve)
    fake_dns["slow-dns.example"] = ["93.184.215.14"]
    fake_dns["fast.example"] = ["93.184.215.14"]

    async def lookups():
        resolver = http.GuardedResolver()
        slow = [asyncio.ensure_future(resolver.resolve("slow-dns.example", 80)) for _ in range(40)]
        started = time.monotonic()
        await resolver.resolve("fast.example", 80)
        fast = time.monotonic() - started
        for task in slow:
            task.cancel()
        await resolver.close()
        return fast

    assert asyncio.run(lookups()) < 0.5
