"""Log-in throttling (issue 11, item 3): django-axes locks a username, and separately a client
address, after LOGIN_FAILURE_LIMIT failures, on /login/ and /admin/login/ alike, before any
password is checked; passwords follow Django's validators; the log-in page names the demo
users in development only."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-password-9"


@pytest.fixture
def alice(fast_password_hashing):
    return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)


def attempt(client, url: str, username: str, password: str, *, address: str = "10.0.0.5"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(client, alice, url):
    """The report: 40 wrong passwords then the right one logged in. Now the fifth failure
    locks the account (429), the right password included, from any address."""
    for _ in range(5):
        assert attempt(client, url, "alice", "wrong").status_code in (200, 429)

    refused = attempt(client, url, "alice", PASSWORD, address="10.0.0.99")

    assert refused.status_code == 429
    assert "Too many failed log-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_many_usernames_from_one_address_lock_the_address(client, alice):
    """Guessing across users from one address stops too, for that address only."""
    for number in range(5):
        attempt(client, "/login/", f"user{number}", "wrong", address="10.0.0.7")

    assert attempt(client, "/login/", "alice", PASSWORD, address="10.0.0.7").status_code == 429
    assert attempt(client, "/login/", "alice", PASSWORD, address="10.0.0.8").status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, alice):
    for _ in range(4):
        attempt(client, "/login/", "alice", "wrong")
    assert attempt(client, "/login/", "alice", PASSWORD).status_code == 302
    client.logout()

    for _ in range(4):
        attempt(client, "/login/", "alice", "wrong")

    assert attempt(client, "/login/", "alice", PASSWORD).status_code == 302


@pytest.mark.parametrize("password", ["demo", "password1234", "123456789012", "alice-alice"])
def test_weak_passwords_are_refused(alice, password):
    with pytest.raises(ValidationError):
        validate_password(password, user=alice)


def test_the_admin_refuses_a_weak_password_for_a_new_user(admin_client):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "bob", "password1": "password", "password2": "password"},
    )

    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="bob").exists()


@pytest.mark.parametrize(("debug", "shown"), [(True, True), (False, False)])
def test_the_demo_credentials_are_named_in_development_only(client, settings, debug, shown):
    settings.DEBUG = debug

    page = client.get("/login/").content.decode()

    assert ("<code>demo</code>" in page) is shown
