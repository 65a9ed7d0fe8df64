"""The harness's free ports: never one the kernel may hand to an outgoing connection."""

import socket
from pathlib import Path

import pytest

from devstack import redis as devstack_redis
from devstack.redis import FREE_PORTS, free_port


def test_free_ports_lie_below_the_kernels_ephemeral_range():
    low, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert max(FREE_PORTS) < low
    assert free_port() in FREE_PORTS


def test_a_port_something_listens_on_is_skipped(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = free_port()
        devstack_redis._handed_out.discard(other)
        monkeypatch.setattr(devstack_redis.random, "sample", lambda *_: [taken, other])
        assert free_port() == other


def test_a_port_is_handed_out_once_per_process(monkeypatch):
    first = free_port()
    monkeypatch.setattr(devstack_redis.random, "sample", lambda *_: [first])
    with pytest.raises(RuntimeError, match="no free port"):
        free_port()


def test_no_free_port_is_an_error(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(devstack_redis.random, "sample", lambda *_: [taken])
        with pytest.raises(RuntimeError, match="no free port"):
            free_port()
