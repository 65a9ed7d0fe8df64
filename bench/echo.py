"""Receivers that behave like merchants' servers: ``python -m bench.echo --ports 8101,8102``.

One aiohttp process listening on several loopback ports (several origins, so several
endpoints for ``notifications``), cheap enough to hold hundreds of slow requests at once.
A request's path says how to answer and whose it is: ``POST /<delay ms>/<tag>/...`` reads
the body, waits ``delay`` milliseconds (at most ``MAX_DELAY_MS``) and answers 204. Per tag
the process keeps the time each ``webhook-id`` first arrived and how many requests it has
answered, for the driver to read with ``GET /_stats/<tag>``:
``{"answered": n, "arrivals": {webhook_id: time.time() of first arrival}}``.
A request without ``webhook-id`` (a peer that sends none) is counted, not timed.
"""

import argparse
import asyncio
import time
from collections import defaultdict

from aiohttp import web

MAX_DELAY_MS = 30_000  # no request is held longer, whatever the path asks


class Tally:
    """Per tag: requests answered, and the first arrival time of each webhook-id."""

    def __init__(self):
        self.answered: dict[str, int] = defaultdict(int)
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
        return web.Response(status=204)

    async def stats(self, request: web.Request) -> web.Response:
        tag = request.match_info["tag"]
        return web.json_response(
            {"answered": self.answered.get(tag, 0), "arrivals": self.arrivals.get(tag, {})}
        )


def application(tally: Tally) -> web.Application:
    app = web.Application(client_max_size=2**20)
    app.router.add_get("/_stats/{tag}", tally.stats)
    app.router.add_post(r"/{delay:\d+}/{tag}/{rest:.*}", tally.receive)
    return app


async def serve(ports: list[int]) -> None:
    """Serve one shared tally on every port of ``ports`` (127.0.0.1) until killed."""
    runner = web.AppRunner(application(Tally()), access_log=None)
    await runner.setup()
    for port in ports:
        # A listen backlog for bursts of hundreds of new connections at once.
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated loopback ports")
    args = parser.parse_args(argv)
    asyncio.run(serve([int(port) for port in args.ports.split(",") if port.strip()]))


if __name__ == "__main__":
    main()
