"""The merchant portal (/portal/): a member sees only its merchant's orders, notifications,
endpoints and credentials; another merchant's are 404 like unknown ones; only an admin member
may resend, recover or roll, and what it does is logged; credentials are shown once."""

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO
from threading import Barrier

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.conf import notify_settings
from notifications.models import Endpoint, Notification
from notifications.selectors import notifications_for_subject
from notifications.services import notifications_prune
from payments import selectors, services
from payments.models import Merchant, MerchantMember
from payments.portal import guide
from payments.portal import selectors as portal_selectors
from payments.portal import services as portal_services
from tests.helpers import failed_attempt

pytestmark = pytest.mark.usefixtures("fast_password_hashing", "deliver_apply_async")
ORDERS = reverse("payments:portal:orders")
RESEND = reverse("payments:portal:orders-resend")
SETTINGS = reverse("payments:portal:settings")
ROLL_SECRET = reverse("payments:portal:webhook-secret-roll")
ROLL_KEY = reverse("payments:portal:api-key-roll")


def order_url(tx_no: str) -> str:
    return reverse("payments:portal:order", args=[tx_no])


def member_client(merchant, role=MerchantMember.Role.ADMIN, username="shopper") -> Client:
    """A browser logged in as a new member of ``merchant`` with ``role``."""
    user = get_user_model().objects.create_user(username, password="a-portal-password-1")
    MerchantMember.objects.create(user=user, merchant=merchant, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def portal(merchant):
    """An admin member of ``merchant``, logged in."""
    return member_client(merchant)


@pytest.fixture
def viewer(merchant):
    """A viewer member of ``merchant``, logged in."""
    return member_client(merchant, MerchantMember.Role.VIEWER, username="looker")


@pytest.fixture
def paid(order_factory, django_capture_on_commit_callbacks):
    """An order of ``merchant``, paid: one notification, with a failed first attempt."""
    order = order_factory(out_trade_no="SHOP-PAID", account_no="AC000000000042")
    with django_capture_on_commit_callbacks(execute=True):
        services.recharge_order_pay(tx_no=order.tx_no)
    notification = notifications_for_subject(subject=order.tx_no).get()
    failed_attempt(
        notification,
        duration_ms=412,
        status_code=503,
        response_excerpt="upstream busy",
        request_headers={"webhook-id": notification.webhook_id, "webhook-timestamp": "1764252000"},
    )
    Notification.objects.filter(pk=notification.pk).update(
        state=Notification.State.EXHAUSTED, attempt_count=1
    )
    return order


@pytest.fixture
def foreign(order_factory, other_merchant):
    """An order of ``other_merchant``."""
    return order_factory(merchant=other_merchant, out_trade_no="THEIRS-1")


def test_a_visitor_is_sent_to_the_portal_log_in(client):
    """Not logged in: every portal page redirects to /portal/login/ with ``next``."""
    response = client.get(ORDERS)

    assert response.status_code == 302
    assert response.url == f"{reverse('payments:portal:login')}?next={ORDERS}"


def test_the_portal_log_in_lands_on_the_orders(client, merchant):
    """The portal's log-in form takes a member to the orders list."""
    member_client(merchant)  # creates the user

    response = client.post(
        reverse("payments:portal:login"),
        {"username": "shopper", "password": "a-portal-password-1"},
    )

    assert response.status_code == 302 and response.url == ORDERS
    assert client.get(ORDERS).status_code == 200


def test_failed_portal_log_ins_are_locked_out_by_axes(client, merchant, settings):
    """django-axes counts the portal's failed log-ins: past the limit even the right
    password gets the locked-out page (429)."""
    member_client(merchant)
    login = reverse("payments:portal:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(login, {"username": "shopper", "password": "wrong"})

    response = client.post(login, {"username": "shopper", "password": "a-portal-password-1"})

    assert response.status_code == 429


def test_a_user_of_no_merchant_gets_403(client, user):
    """A logged-in wallet user who belongs to no merchant sees no portal page."""
    client.force_login(user)

    response = client.get(ORDERS)

    assert response.status_code == 403
    assert b"not a member of any merchant" in response.content


def test_the_orders_list_shows_only_the_members_merchant(portal, paid, foreign):
    """The list names the merchant's order with its amount in major units, status and
    notification state; another merchant's order is not there."""
    response = portal.get(ORDERS)

    assert response.status_code == 200
    page = response.content.decode()
    assert "SHOP-PAID" in page and "12.34 CNY" in page and "exhausted" in page
    assert "THEIRS-1" not in page and foreign.tx_no not in page


@pytest.mark.parametrize("field", ["out_trade_no", "tx_no", "account_no", "webhook_id"])
def test_search_finds_an_order_by_any_identifier(portal, paid, order_factory, field):
    """One exact identifier finds the order: out_trade_no, tx_no, account_no, or the
    webhook-id of its notification; the other order is not listed."""
    order_factory(out_trade_no="SHOP-OTHER", account_no="AC000000000099")
    notification = notifications_for_subject(subject=paid.tx_no).get()
    text = notification.webhook_id if field == "webhook_id" else getattr(paid, field)

    page = portal.get(ORDERS, {"q": text}).content.decode()

    assert "SHOP-PAID" in page and "SHOP-OTHER" not in page


def test_search_by_another_merchants_identifiers_finds_nothing(portal, foreign, paid):
    """Another merchant's tx_no or out_trade_no matches nothing here."""
    for text in (foreign.tx_no, foreign.out_trade_no):
        page = portal.get(ORDERS, {"q": text}).content.decode()
        assert "No orders match." in page and order_url(foreign.tx_no) not in page


def test_the_status_filter_narrows_and_a_bad_one_is_400(portal, paid, order_factory):
    """``status=0`` lists only pending orders; ``status=7`` is 400 with the reason."""
    order_factory(out_trade_no="SHOP-PENDING")

    page = portal.get(ORDERS, {"status": "0"}).content.decode()
    refused = portal.get(ORDERS, {"status": "7"})

    assert "SHOP-PENDING" in page and "SHOP-PAID" not in page
    assert refused.status_code == 400
    assert b"Select a valid choice" in refused.content


def test_the_list_is_paginated_and_a_page_past_the_end_is_404(portal, order_factory):
    """51 orders: page 1 has 50 and links the older ones; page 2 the last; page 3 is 404."""
    for number in range(51):
        order_factory(out_trade_no=f"BULK-{number:02d}")

    first = portal.get(ORDERS).content.decode()
    second = portal.get(ORDERS, {"page": "2"}).content.decode()

    assert first.count('name="tx_no"') == 50 and "page=2" in first
    assert second.count('name="tx_no"') == 1 and "BULK-00" in second
    assert portal.get(ORDERS, {"page": "3"}).status_code == 404


def test_the_order_page_shows_the_body_as_sent_and_every_attempt(portal, paid):
    """The order's notification: its webhook-id, the frozen body indented, and the attempt's
    status, duration, response excerpt and the request headers it sent; with a Resend button
    for an admin."""
    notification = notifications_for_subject(subject=paid.tx_no).get()

    page = portal.get(order_url(paid.tx_no)).content.decode()

    assert notification.webhook_id in page
    assert "&quot;out_trade_no&quot;: &quot;SHOP-PAID&quot;" in page  # indented JSON
    assert "503" in page and "412" in page and "upstream busy" in page
    assert "webhook-timestamp: 1764252000" in page
    assert ">Resend</button>" in page


def test_a_queue_targets_notification_reads_as_published_not_posted(portal, paid):
    """A notification to a ``queue://`` target (scheme 1) says where it was published, not
    "POST queue://…"."""
    Notification.objects.filter(subject=paid.tx_no).update(target_url="queue://accounts")

    page = portal.get(order_url(paid.tx_no)).content.decode()

    assert "Published to</dt><dd>queue://accounts" in page
    assert "POST queue://" not in page


def test_another_merchants_order_is_404_like_an_unknown_one(portal, foreign):
    """Another merchant's tx_no reads exactly as one that does not exist."""
    theirs = portal.get(order_url(foreign.tx_no))
    unknown = portal.get(order_url("20260101ffffffffffffffffffff"))

    assert theirs.status_code == unknown.status_code == 404


def test_resend_schedules_the_notification_now_and_logs_it(
    portal, paid, deliver_apply_async, django_capture_on_commit_callbacks
):
    """Resend from the order page: the exhausted notification is pending and due now, a
    delivery is queued after commit, the member is told, and the admin History of the order
    records who did it."""
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(RESEND, {"tx_no": paid.tx_no, "next": order_url(paid.tx_no)})

    assert response.status_code == 302 and response.url == order_url(paid.tx_no)
    notification = notifications_for_subject(subject=paid.tx_no).get()
    assert notification.state == Notification.State.PENDING
    assert before <= notification.next_attempt_at <= timezone.now()
    deliver_apply_async.assert_called_with(args=(str(notification.pk),))
    entry = LogEntry.objects.get(object_id=str(paid.pk))
    assert entry.user.username == "shopper"
    assert entry.get_change_message() == "Resend notification from the portal: 1 scheduled."
    page = portal.get(order_url(paid.tx_no)).content.decode()
    assert "Scheduled 1 notification(s) of 1 order(s)" in page


def test_an_order_whose_notification_was_pruned_says_so_and_resend_too(portal, paid):
    """Past the retention period the delivered notification is deleted: the order page says
    so (not that the notify_url will be notified), and Resend says why nothing was sent."""
    delivered_at = timezone.now() - timedelta(seconds=notify_settings.RETENTION + 60)
    Notification.objects.filter(subject=paid.tx_no).update(
        state=Notification.State.DELIVERED, delivered_at=delivered_at
    )
    notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=5)

    page = portal.get(order_url(paid.tx_no)).content.decode()
    resent = portal.post(RESEND, {"tx_no": paid.tx_no}, follow=True).content.decode()

    assert "None left: its notification was delivered, then deleted" in page
    assert "one delivered long ago has been deleted" in resent


def test_resend_many_refuses_a_foreign_order_and_resends_nothing(portal, paid, foreign):
    """One of the ticked tx_nos is another merchant's: 404, and the member's own order's
    notification was not touched either."""
    response = portal.post(RESEND, {"tx_no": [paid.tx_no, foreign.tx_no]})

    assert response.status_code == 404
    assert notifications_for_subject(subject=paid.tx_no).get().state == "exhausted"


@pytest.mark.parametrize("count", [0, 101])
def test_resend_many_takes_1_to_100_orders(portal, paid, count):
    """None ticked, or more than 100: 400 with the reason; nothing changes."""
    response = portal.post(RESEND, {"tx_no": [f"TX{n}" for n in range(count)]})

    assert response.status_code == 400
    assert b"Choose between 1 and 100 orders." in response.content
    assert notifications_for_subject(subject=paid.tx_no).get().state == "exhausted"


@pytest.mark.parametrize("tx_no", ["TX\x00NUL", "x" * 65, "a b"])
def test_resend_of_something_that_is_no_tx_no_is_a_400(portal, paid, tx_no):
    """A tx_no that cannot be one (a NUL, which PostgreSQL text cannot hold: it was a 500;
    too long; punctuation) is refused before any query: 400 with the reason, nothing
    resent."""
    response = portal.post(RESEND, {"tx_no": [paid.tx_no, tx_no]})

    assert response.status_code == 400
    assert b"Not a tx_no: 1-64 letters, digits, _ or -." in response.content
    assert notifications_for_subject(subject=paid.tx_no).get().state == "exhausted"


def test_resend_presses_are_rate_limited_per_merchant(portal, paid, settings, fresh_throttles):
    """Past PAYMENTS_PORTAL_RESEND_RATE the next press is 429 with a Retry-After."""
    settings.PAYMENTS_PORTAL_RESEND_RATE = "1/min"
    assert portal.post(RESEND, {"tx_no": paid.tx_no}).status_code == 302

    refused = portal.post(RESEND, {"tx_no": paid.tx_no})

    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


def test_a_viewer_sees_but_cannot_resend_or_roll(viewer, paid, merchant):
    """A viewer's pages have no Resend or roll buttons, and its POSTs are 403: the
    notification, the secret and the key are unchanged."""
    secret, key_hash = merchant.webhook_secret, merchant.api_key_hash
    page = viewer.get(order_url(paid.tx_no)).content.decode()
    assert "SHOP-PAID" in page and ">Resend</button>" not in page

    version = {"version": portal_selectors.api_key_version(merchant)}
    for url, data in ((RESEND, {"tx_no": paid.tx_no}), (ROLL_SECRET, {}), (ROLL_KEY, version)):
        assert viewer.post(url, data).status_code == 403, url

    merchant.refresh_from_db()
    assert (merchant.webhook_secret, merchant.api_key_hash) == (secret, key_hash)
    assert notifications_for_subject(subject=paid.tx_no).get().state == "exhausted"


def test_posts_without_a_csrf_token_are_refused(merchant, paid):
    """The portal's forms are CSRF-protected: a POST without the token is 403."""
    client = member_client(merchant)
    client.handler.enforce_csrf_checks = True

    assert client.post(ROLL_SECRET).status_code == 403
    assert client.post(RESEND, {"tx_no": paid.tx_no}).status_code == 403


def test_rolling_the_webhook_secret_shows_it_once(portal, merchant):
    """The answer shows the new secret and the old one's overlap end, is not cached, and is
    logged; the credentials page afterwards does not show it."""
    old = merchant.webhook_secret

    response = portal.post(ROLL_SECRET)

    merchant.refresh_from_db()
    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert merchant.webhook_secret in page and merchant.webhook_secret != old
    assert merchant.previous_webhook_secret == old
    assert f"{merchant.previous_secret_expires_at:%Y-%m-%d %H:%M:%S} UTC" in page
    assert LogEntry.objects.get(object_id=str(merchant.pk)).change_message == (
        "Webhook secret rolled from the portal."
    )
    later = portal.get(SETTINGS).content.decode()
    assert merchant.webhook_secret not in later and old not in later
    assert "also signs until" in later


def test_a_second_roll_during_the_overlap_is_refused_keeping_the_deployed_secret(portal, merchant):
    """A roll keeps one previous secret: a second roll while the first's overlap lasts (a
    resubmitted form, a second press) would stop at once the secret the merchant's receiver
    still has. It is refused (409, with until when) and nothing changes; the credentials page
    offers no roll until then and says why."""
    deployed = merchant.webhook_secret
    assert portal.post(ROLL_SECRET).status_code == 200
    merchant.refresh_from_db()
    shown = merchant.webhook_secret

    again = portal.post(ROLL_SECRET)

    merchant.refresh_from_db()
    until = f"{merchant.previous_secret_expires_at:%Y-%m-%d %H:%M:%S} UTC"
    assert again.status_code == 409 and until in again.content.decode()
    assert (merchant.webhook_secret, merchant.previous_webhook_secret) == (shown, deployed)
    page = portal.get(SETTINGS).content.decode()
    assert ">Roll webhook secret</button>" not in page
    assert f"Roll again after {until}" in page


def test_rolling_the_api_key_revokes_the_old_one_and_shows_the_new_once(
    portal, merchant, merchant_credentials
):
    """The old key stops authenticating; the one shown works; the page is not cached."""
    page = portal.get(SETTINGS).content.decode()
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    response = portal.post(ROLL_KEY, {"version": version})

    new_key = re.search(r'id="shown-once">(sk_[^<]+)<', response.content.decode()).group(1)
    assert "no-store" in response["Cache-Control"]
    assert selectors.merchant_for_api_key(api_key=merchant_credentials.api_key) is None
    assert selectors.merchant_for_api_key(api_key=new_key) == merchant
    assert new_key not in portal.get(SETTINGS).content.decode()


@pytest.fixture
def endpoints(paid, foreign, django_capture_on_commit_callbacks):
    """The member's endpoint, disabled (its notification exhausted), and another
    merchant's."""
    with django_capture_on_commit_callbacks(execute=True):
        services.recharge_order_pay(tx_no=foreign.tx_no)
    ours = Endpoint.objects.get(sender_key=paid.merchant.app_id)
    Endpoint.objects.filter(pk=ours.pk).update(
        state=Endpoint.State.DISABLED,
        disabled_at=timezone.now(),
        attempts_total=8,
        failures_total=2,
    )
    return ours, Endpoint.objects.get(sender_key=foreign.merchant.app_id)


def test_the_endpoints_page_shows_own_endpoints_health(portal, endpoints):
    """The member's endpoint with its state, success rate and undelivered count; not the
    other merchant's (same origin, other sender)."""
    page = portal.get(reverse("payments:portal:endpoints")).content.decode()

    assert page.count('class="card endpoint"') == 1
    assert "Disabled" in page and "75.0% of 8 attempt(s), all time" in page
    assert "<dt>Success lately</dt><dd>—</dd>" in page  # no attempt in a window yet


def test_the_endpoints_page_shows_how_it_does_lately(portal, endpoints):
    """The latest circuit window's rate beside the lifetime one: a recovered endpoint's
    recent attempts all succeeded though its lifetime rate still carries the outage."""
    ours, _ = endpoints
    started = timezone.now() - timedelta(seconds=30)
    Endpoint.objects.filter(pk=ours.pk).update(
        window_started_at=started, window_attempts=20, window_failures=0
    )

    page = portal.get(reverse("payments:portal:endpoints")).content.decode()

    assert f"100.0% of 20 attempt(s) in the latest window, from {started:%Y-%m-%d %H:%M:%S}" in page
    assert ">Re-enable</button>" in page


def test_recover_resends_since_a_time_and_another_merchants_endpoint_is_404(portal, endpoints):
    """Recover since an hour ago: the endpoint is healthy and its exhausted notification
    pending again. The same POST on the other merchant's endpoint is 404 and changes
    nothing; a time in the future is 400."""
    ours, theirs = endpoints
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    url = "payments:portal:endpoint-recover"

    foreign = portal.post(reverse(url, args=[theirs.pk]), {"since": since})
    future = portal.post(reverse(url, args=[ours.pk]), {"since": "2999-01-01T00:00"})
    response = portal.post(reverse(url, args=[ours.pk]), {"since": since})

    assert foreign.status_code == 404 and future.status_code == 400
    assert response.status_code == 302
    ours.refresh_from_db()
    assert ours.state == Endpoint.State.CLOSED
    assert Notification.objects.get(endpoint=ours).state == Notification.State.PENDING
    assert Endpoint.objects.get(pk=theirs.pk).state == theirs.state


def test_recover_presses_spend_the_resend_rate(portal, paid, endpoints, settings, fresh_throttles):
    """A Recover reschedules every undelivered notification of the endpoint since any time at
    once, so it spends the merchant's PAYMENTS_PORTAL_RESEND_RATE as a Resend does: past it,
    429 with a Retry-After, and the exhausted notification stays exhausted."""
    settings.PAYMENTS_PORTAL_RESEND_RATE = "1/min"
    ours, _ = endpoints
    assert portal.post(RESEND, {"tx_no": paid.tx_no}).status_code == 302
    Notification.objects.filter(endpoint=ours).update(state=Notification.State.EXHAUSTED)
    url = reverse("payments:portal:endpoint-recover", args=[ours.pk])

    refused = portal.post(url, {"since": "2000-01-01T00:00"})

    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert Notification.objects.get(endpoint=ours).state == Notification.State.EXHAUSTED


def test_reenable_closes_the_circuit_of_own_endpoint_only(portal, endpoints):
    """Re-enable: the member's endpoint is healthy; the other merchant's is 404."""
    ours, theirs = endpoints
    url = "payments:portal:endpoint-enable"

    assert portal.post(reverse(url, args=[theirs.pk])).status_code == 404
    assert portal.post(reverse(url, args=[ours.pk])).status_code == 302
    ours.refresh_from_db()
    assert ours.state == Endpoint.State.CLOSED


def test_the_guide_fills_in_the_merchant_and_renders_the_contract(portal, merchant, settings):
    """The guide names the merchant's app_id, the API URL of the settings in its curl
    commands and an allowed host in its URLs, then the contract of docs/notifications.md
    without links into the source tree."""
    settings.PAYMENTS_API_URL = "https://pay.example:8443"

    page = portal.get(reverse("payments:portal:guide")).content.decode()

    assert merchant.app_id in page
    assert "curl -sS -X POST https://pay.example:8443/api/payments/recharges/" in page
    assert '"notify_url": "https://merchant.example/notify"' in page.replace("&quot;", '"')
    assert "<h2>Signature (Standard Webhooks)</h2>" in page
    assert 'href="../' not in page


def test_the_guide_of_a_merchant_without_allowed_hosts_says_to_ask_for_one(portal, merchant):
    """A merchant onboarded without --allowed-host (none yet) still gets its guide, which
    says no URL is accepted until staff add a host, instead of a 500."""
    merchant.allowed_hosts = []
    merchant.save(update_fields=["allowed_hosts"])

    response = portal.get(reverse("payments:portal:guide"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "No allowed host yet" in page
    assert '"notify_url": "https://your-shop.example/notify"' in page.replace("&quot;", '"')


def test_the_contract_is_rendered_without_raw_html_or_links_into_the_source(tmp_path, monkeypatch):
    """The guide's rendering of the contract file drops its title, escapes raw HTML, shows
    a link into the repository as its text and keeps a link to the web."""
    contract = tmp_path / "contract.md"
    contract.write_text(
        "# Title\n\n<script>alert(1)</script>\n\n"
        "See [the envelope](../notifications/envelope.py) and [the spec](https://spec.example/).\n"
    )
    monkeypatch.setattr(guide, "CONTRACT", contract)

    html = guide.contract_html()

    assert "Title" not in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "See the envelope and " in html
    assert '<a href="https://spec.example/">the spec</a>' in html


@pytest.mark.django_db
def test_create_merchant_with_a_portal_user_prints_its_password_once():
    """``create_merchant --portal-user`` makes the user an admin member with a random
    password that logs in."""
    out = StringIO()

    call_command(
        "create_merchant", "Shop", allowed_hosts=["shop.example"], portal_user="ann", stdout=out
    )

    password = re.search(r"portal password: (\S+)", out.getvalue()).group(1)
    member = MerchantMember.objects.get(user__username="ann")
    assert member.role == MerchantMember.Role.ADMIN and member.merchant.name == "Shop"
    assert member.user.check_password(password)


def test_merchant_member_add_links_a_user_once(merchant, other_merchant, user):
    """An existing user is linked (no password printed) as a viewer; adding it to another
    merchant is refused."""
    out = StringIO()

    call_command("merchant_member_add", merchant.app_id, user.username, role="viewer", stdout=out)

    assert "password" not in out.getvalue()
    assert MerchantMember.objects.get(user=user).role == "viewer"
    with pytest.raises(CommandError, match="already a member of"):
        call_command("merchant_member_add", other_merchant.app_id, user.username)


@pytest.mark.django_db
def test_seed_demo_gives_the_demo_merchant_its_portal_user(settings):
    """``seed_demo`` (development) makes shop/shop an admin of the demo merchant, and
    running it again changes nothing."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    member = MerchantMember.objects.get(user__username="shop")
    assert member.merchant.api_key_prefix == settings.DEV_PAYMENTS_API_KEY[:16]
    assert member.role == MerchantMember.Role.ADMIN and member.user.check_password("shop")


def test_a_viewer_cannot_recover_or_reenable(viewer, endpoints):
    """A viewer's endpoints page has no Re-enable or Recover; its POSTs are 403 and the
    endpoint stays disabled."""
    ours, _ = endpoints
    page = viewer.get(reverse("payments:portal:endpoints")).content.decode()
    assert "Disabled" in page and ">Re-enable</button>" not in page and ">Recover<" not in page

    since = {"since": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    for name, data in (("endpoint-recover", since), ("endpoint-enable", {})):
        response = viewer.post(reverse(f"payments:portal:{name}", args=[ours.pk]), data)
        assert response.status_code == 403, name

    ours.refresh_from_db()
    assert ours.state == Endpoint.State.DISABLED


def test_a_deactivated_merchants_portal_is_read_only(portal, paid, endpoints, merchant):
    """Once staff deactivate the merchant, its admin member still reads orders (with the
    reason shown on every page) but every change is 403 with that reason: no resend, no
    recover or re-enable, no secret or key roll; nothing changes."""
    Merchant.objects.filter(pk=merchant.pk).update(is_active=False)
    ours, _ = endpoints
    secret, key_hash = merchant.webhook_secret, merchant.api_key_hash
    page = portal.get(order_url(paid.tx_no)).content.decode()
    assert "SHOP-PAID" in page and "deactivated" in page and ">Resend</button>" not in page

    since = {"since": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    posts = [
        (RESEND, {"tx_no": paid.tx_no}),
        (ROLL_SECRET, {}),
        (ROLL_KEY, {"version": portal_selectors.api_key_version(merchant)}),
        (reverse("payments:portal:endpoint-recover", args=[ours.pk]), since),
        (reverse("payments:portal:endpoint-enable", args=[ours.pk]), {}),
    ]
    for url, data in posts:
        response = portal.post(url, data)
        assert response.status_code == 403, url
        assert "deactivated" in response.content.decode(), url

    merchant.refresh_from_db()
    ours.refresh_from_db()
    assert (merchant.webhook_secret, merchant.api_key_hash) == (secret, key_hash)
    assert ours.state == Endpoint.State.DISABLED
    assert notifications_for_subject(subject=paid.tx_no).get().state == "exhausted"


def test_services_refuse_a_deactivated_merchants_member(portal, paid, merchant):
    """The services check it too, not only the views, on the merchant's locked row: a member
    loaded while the merchant was active (the request began before staff deactivated it)
    rolls nothing."""
    members = MerchantMember.objects.select_related("merchant").filter(merchant=merchant)
    loaded_before = [members.get(), members.get()]
    Merchant.objects.filter(pk=merchant.pk).update(is_active=False)

    with pytest.raises(PermissionDenied, match="deactivated"):
        portal_services.member_api_key_roll(
            member=loaded_before[0], version=portal_selectors.api_key_version(merchant)
        )
    with pytest.raises(PermissionDenied, match="deactivated"):
        portal_services.member_webhook_secret_roll(member=loaded_before[1])
    assert Merchant.objects.get(pk=merchant.pk).webhook_secret == merchant.webhook_secret


def test_an_api_key_roll_sent_again_is_409_and_rolls_nothing(portal, merchant):
    """The roll form names the key it rolls: sent again (a refreshed result page) or after
    another admin's roll, it is 409 with the reason and the key just shown keeps working;
    without the field it is refused the same way."""
    version = {"version": portal_selectors.api_key_version(merchant)}
    first = portal.post(ROLL_KEY, version)
    shown = re.search(r'id="shown-once">(sk_[^<]+)<', first.content.decode()).group(1)

    again, bare = portal.post(ROLL_KEY, version), portal.post(ROLL_KEY)

    assert again.status_code == 409 and bare.status_code == 409
    assert "already rolled" in again.content.decode()
    assert selectors.merchant_for_api_key(api_key=shown) == merchant


def test_a_merchant_left_without_a_key_by_staff_gets_one_from_the_portal(portal, merchant):
    """After staff's ``revoke_api_key --no-new-key`` the credentials page still offers the
    roll, and it issues a key that works."""
    call_command("revoke_api_key", merchant.app_id, "--no-new-key", stdout=StringIO())
    page = portal.get(SETTINGS).content.decode()
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)

    response = portal.post(ROLL_KEY, {"version": version})

    shown = re.search(r'id="shown-once">(sk_[^<]+)<', response.content.decode()).group(1)
    assert selectors.merchant_for_api_key(api_key=shown) == merchant


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no row locks to race on")
def test_two_admins_rolling_the_api_key_at_once_roll_it_once(merchant, transactional_db):
    """Two rolls of the same version at once, each in its own thread and connection: the
    merchant's row lock lets one through; the other is ``KeyRolledMeanwhile``."""
    members = [
        MerchantMember.objects.create(
            user=get_user_model().objects.create_user(f"admin{i}"), merchant=merchant, role="admin"
        )
        for i in range(2)
    ]
    version = portal_selectors.api_key_version(merchant)
    barrier = Barrier(2)

    def roll(member):
        barrier.wait(timeout=10)
        try:
            return portal_services.member_api_key_roll(member=member, version=version)
        except portal_services.KeyRolledMeanwhile:
            return None
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(roll, members))

    assert sorted(outcome is None for outcome in outcomes) == [False, True]
    issued = next(outcome for outcome in outcomes if outcome)
    assert selectors.merchant_for_api_key(api_key=issued) == merchant
