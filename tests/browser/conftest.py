"""Browser tests: the pages in Debian's Chromium, driven by Playwright, against pytest-django's
``live_server`` (a real HTTP server in a thread of this process, so ``settings`` and
``monkeypatch`` reach the views, and rows are committed: ``transactional_db``).

Each test runs at a desktop and at a phone width (``width``) and saves what the user saw as
``var/screenshots/<test>-<width>.png``. Playwright's own browser download is not used: the
browser is ``/usr/bin/chromium`` (``apt-get install chromium``). Without it the tests are
skipped with the reason on a developer's machine, and fail under CI (``CI`` set, as
``.ci/run`` does).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from devstack.stack import VAR

CHROMIUM = Path("/usr/bin/chromium")
# Playwright passes --headless itself; the rest keep Chromium off the network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The phone is emulated as one (is_mobile: a page without a viewport meta tag is laid out
# 980 px wide and shrunk to fit, as a phone's browser does), not as a narrow desktop window.
CONTEXTS = {
    1280: {"viewport": {"width": 1280, "height": 800}},
    390: {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
SCREENSHOTS = VAR / "screenshots"


@pytest.fixture(scope="package")
def chromium(django_db_setup):
    """One Chromium for the browser tests (a fresh context, so fresh cookies, per test).

    Package-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop marked
    running on this thread while it is started. Django would refuse the ORM calls of these
    tests' fixtures and assertions (SynchronousOnlyOperation; none of them is async, hence
    DJANGO_ALLOW_ASYNC_UNSAFE for this package only), and tests collected after these that
    call ``asyncio.run`` (the delivery client's) would fail if it outlived the package. The
    test database is created before it starts, for the same reason.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: the browser tests need `apt-get install chromium`"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=sorted(CONTEXTS, reverse=True), ids=lambda width: f"{width}px")
def width(request) -> int:
    """The window's width in CSS pixels: a desktop (1280) and a phone (390)."""
    return request.param


@pytest.fixture
def page(chromium, width, live_server, transactional_db) -> Page:
    """A new browser tab at ``width``, its relative URLs resolved against ``live_server``."""
    context = chromium.new_context(**CONTEXTS[width], base_url=live_server.url)
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot(page, width, request):
    """``screenshot()`` saves what the user sees as ``var/screenshots/<test>-<width>.png``
    (``screenshot("step")``: ``<test>-step-<width>.png``, for a test that shows several
    pages): the whole page on the desktop; on the phone its screen, because a full-page
    capture there is drawn at the 980 px layout's scale, not shrunk to the 390 px the phone
    shows."""

    def save(step: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = "-".join(filter(None, [request.node.originalname, step, str(width)]))
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path, full_page=not CONTEXTS[width].get("is_mobile"))
        return path

    return save
