"""Receivers that behave like merchants' servers: ``python -m bench.echo --ports 8101,8102``.

One aiohttp process listening on several loopback ports (several origins, so several
endpoints for ``notifications``), cheap enough to hold hundreds of slow requests at once.
A request's path says how to answer and whose it is: ``POST /<delay ms>/<tag>/...`` reads
the body, waits ``delay`` milliseconds (at most ``MAX_DELAY_MS``) and answers 204, or the
status its query asks for (``?status=503``: a server in an outage). Per tag
the process keeps how many requests it has answered and when it answered the last one
(``GET /_count/<tag>``: ``{"answered": n, "last": time.time()}``), and when each
``webhook-id`` first arrived (``GET /_arrivals/<tag>``: ``{webhook_id: time.time()}``). A
request without ``webhook-id`` (a peer that sends none) is counted, not timed. The driver
reads them with ``answered`` and ``arrivals``.
"""

import argparse
import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

import requests
from aiohttp import web

from devstack.settle import wait_until

MAX_DELAY_MS = 30_000  # no request is held longer, whatever the path asks


class Tally:
    """Per tag: requests answered, the last answer's time, the first arrival time of each
    webhook-id."""

    def __init__(self):
        self.answered: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}
        self.arrivals: dict[str, dict[str, float]] = defaultdict(dict)

    async def receive(self, request: web.Request) -> web.Response:
        arrived = time.time()
        delay_ms, tag = request.match_info["delay"], request.match_info["tag"]
        await request.read()
        webhook_id = request.headers.get("webhook-id")
        if webhook_id:
            self.arrivals[tag].setdefault(webhook_id, arrived)
        await asyncio.sleep(min(int(delay_ms), MAX_DELAY_MS) / 1000)
        self.answered[tag] += 1
        self.last[tag] = time.time()
        return web.Response(status=int(request.query.get("status", 204)))

    async def count(self, request: web.Request) -> web.Response:
        tag = request.match_info["tag"]
        return web.json_response(
            {"answered": self.answered.get(tag, 0), "last": self.last.get(tag)}
        )

    async def arrived(self, request: web.Request) -> web.Response:
        return web.json_response(self.arrivals.get(request.match_info["tag"], {}))


def application(tally: Tally) -> web.Application:
    app = web.Application(client_max_size=2**20)
    app.router.add_get("/_count/{tag}", tally.count)
    app.router.add_get("/_arrivals/{tag}", tally.arrived)
    app.router.add_post(r"/{delay:\d+}/{tag}/{rest:.*}", tally.receive)
    return app


async def serve(ports: list[int]) -> None:
    """Serve one shared tally on every port of ``ports`` (127.0.0.1) until killed."""
    runner = web.AppRunner(application(Tally()), access_log=None)
    await runner.setup()
    # The first port last: the driver waits for it, so when it answers every port is bound.
    for port in [*ports[1:], ports[0]]:
        # A listen backlog for bursts of hundreds of new connections at once.
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


def answered(origin: str, tag: str) -> dict:
    """``{"answered": n, "last": time.time() of the last answer or None}`` for ``tag``."""
    return requests.get(f"{origin}/_count/{tag}", timeout=5).json()


def arrivals(origin: str, tag: str) -> dict[str, float]:
    """``{webhook_id: time.time() of its first arrival}`` for ``tag``."""
    return requests.get(f"{origin}/_arrivals/{tag}", timeout=30).json()


@dataclass
class Receivers:
    """Echo receivers seen from the driver: ``origins`` answering after ``delay_ms``,
    their URLs for a tag, and ``wait`` until a tag's requests are answered."""

    origins: list[str]
    delay_ms: int
    timeout: float

    def urls(self, tag: str, kind: str = "notify") -> list[str]:
        return [f"{origin}/{self.delay_ms}/{tag}/{kind}" for origin in self.origins]

    def wait(self, tag: str, n: int, *, gave_up=lambda: False) -> dict:
        """Until the receivers answered ``n`` requests of ``tag``, or ``gave_up()`` (the
        contender has nothing left in flight); ``{"answered", "last"}`` then. Raises
        WaitTimeout after ``timeout`` seconds."""

        def done():
            finished = gave_up()  # before the count: nothing can arrive after it
            count = answered(self.origins[0], tag)
            return count if count["answered"] >= n or finished else None

        return wait_until(
            done, timeout=self.timeout, interval=0.05, what=f"{n} requests of {tag} answered"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated loopback ports")
    args = parser.parse_args(argv)
    asyncio.run(serve([int(port) for port in args.ports.split(",") if port.strip()]))


if __name__ == "__main__":
    main()
