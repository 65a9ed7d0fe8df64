"""A person at a browser, for the drivers of ``make demo`` and ``make chaos``: a logged-in
session that walks the web app's real pages (login, the wallet's recharge form, the cashier)
with a cookie jar and CSRF tokens, no JavaScript, redirects not followed.

Every request goes on a new connection (``Connection: close``): a pooled keep-alive
connection that gunicorn closed while idle (its keepalive is 2 s) makes the next POST fail
with a connection reset before the server sees it, and a POST must not be retried blindly.
"""

import requests


class DriveError(Exception):
    """A page answered something a browser would not expect (the message says which)."""


class Browser:
    """One user's browser session on the web app at ``base_url`` (``http://host:port``).

    ``timeout`` is seconds per request. Not thread-safe: one request at a time. Every step
    raises DriveError when the server cannot be reached or answers another status than the
    page would in a browser.
    """

    def __init__(self, *, base_url: str, username: str, password: str, timeout: float = 30):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # the stack is on loopback: no proxy from the environment
        self.http.headers["Connection"] = "close"

    def login(self) -> None:
        """The login page, then its form (→ 302 anywhere but back to the login page)."""
        self.request("GET", "/login/", expect=200)
        credentials = {"username": self.username, "password": self.password, "next": "/"}
        response = self.request(
            "POST", "/login/", data=credentials, expect=302, step=f"POST /login/ as {self.username}"
        )
        if "/login/" in response.headers.get("Location", ""):
            raise DriveError(f"login as {self.username} refused")

    def top_up(self, amount: str) -> str:
        """The wallet's recharge form with ``amount`` as typed (``"12.34"``); returns the
        cashier URL (``.../pay/<tx_no>/``) accounts sends the browser to."""
        response = self.request(
            "POST", "/recharges/", data={"amount": amount}, referer="/", expect=302
        )
        location = response.headers["Location"]
        if "/pay/" not in location:
            # accounts sends the browser back to the wallet when it could not create the order
            raise DriveError(f"POST /recharges/ sent the browser to {location} (payments down?)")
        return location

    def finish(self, cashier_url: str, action: str) -> str:
        """Press ``action`` (``"pay"`` or ``"decline"``) at the cashier; returns the return URL
        the cashier redirects to."""
        response = self.request(
            "POST", cashier_url, data={"action": action}, expect=302, step=f"POST cashier {action}"
        )
        return response.headers["Location"]

    def request(
        self,
        method: str,
        url: str,
        *,
        expect: int,
        data: dict | None = None,
        referer: str | None = None,
        step: str | None = None,
    ) -> requests.Response:
        """One request as a browser makes it; ``url`` and ``referer`` may be paths on
        ``base_url``. A POST carries the CSRF token and a Referer (``referer``, default the
        page itself). Raises DriveError, named ``step`` (default ``"METHOD url"``), unless the
        status is ``expect``."""
        step = step or f"{method} {url}"
        url = self._absolute(url)
        headers = {}
        if method == "POST":
            data = {**(data or {}), "csrfmiddlewaretoken": self._csrf()}
            headers["Referer"] = self._absolute(referer or url)
        try:
            response = self.http.request(
                method,
                url,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise DriveError(f"{step}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != expect:
            excerpt = response.text[:200].replace("\n", " ")
            raise DriveError(f"{step}: HTTP {response.status_code} (expected {expect}): {excerpt}")
        return response

    def _absolute(self, url: str) -> str:
        return self.base_url + url if url.startswith("/") else url

    def _csrf(self) -> str:
        token = self.http.cookies.get("csrftoken")
        if not token:
            raise DriveError("no csrftoken cookie")
        return token
