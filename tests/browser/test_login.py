"""The log-in page in a browser, as in production (DEBUG off): no demo credentials, Django's
error for a wrong password, and django-axes's locked-out page after LOGIN_FAILURE_LIMIT
failures, which the right password does not get past."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, Response, expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]
PASSWORD = "a-long-enough-password-9"
WRONG_PASSWORD_ERROR = "Please enter a correct username and password."


@pytest.fixture
def alice(transactional_db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


@pytest.fixture(autouse=True)
def _production_like(settings):
    settings.DEBUG = False


def log_in(page: Page, username: str, password: str) -> Response:
    """Fill in the form and press Log in; the response of the page the browser lands on."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Log in").click()
    return navigation.value


def test_a_wrong_password_shows_the_error_and_no_demo_credentials(page, screenshot, alice):
    """Without DEBUG the page names no demo user; a wrong password is the form again with
    Django's error, and the user is still logged out."""
    assert page.goto("/login/").status == 200
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text("Development:")).to_have_count(0)

    response = log_in(page, "alice", "wrong")

    assert response.status == 200
    assert response.url.endswith("/login/")
    expect(page.get_by_text(WRONG_PASSWORD_ERROR)).to_be_visible()
    expect(page.get_by_text("Development:")).to_have_count(0)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    screenshot()


def test_after_the_failure_limit_even_the_right_password_is_locked_out(
    page, screenshot, alice, settings
):
    """LOGIN_FAILURE_LIMIT wrong passwords: the last one already answers the locked-out page
    (429); the right password then gets that page again, and the wallet still asks to log
    in."""
    page.goto("/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(page, "alice", "wrong").status == 200
    assert log_in(page, "alice", "wrong").status == 429
    page.goto("/login/")

    response = log_in(page, "alice", PASSWORD)

    assert response.status == 429
    expect(page.get_by_role("heading", name="Too many failed log-ins")).to_be_visible()
    expect(page.get_by_text("Logging in is locked for this account")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    screenshot()
    assert page.goto("/").url.endswith("/login/?next=/")


def test_a_login_without_a_wallet_lands_on_a_page_saying_where_it_belongs(
    page, width, screenshot, alice
):
    """A login with no wallet (a portal user, say) lands on the no-wallet page (403), which
    points to the merchant portal and fits the screen."""
    page.goto("/login/")

    response = log_in(page, "alice", PASSWORD)

    assert response.status == 403
    expect(page.get_by_role("heading", name="This login has no wallet")).to_be_visible()
    expect(page.get_by_role("link", name="merchant portal")).to_have_attribute(
        "href", "/portal/login/"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot("no-wallet")
