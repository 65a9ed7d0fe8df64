"""Endpoints for staff: their health in the admin, the disabled-endpoint banner on every admin
page, re-enable and recover (admin actions and ``manage.py endpoint_recover``), and the
undelivered report (``manage.py notifications_undelivered``)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from notifications.models import Endpoint, Notification
from payments.models import Merchant
from tests.helpers import shop_notifications, staff_user

pytestmark = pytest.mark.django_db
State = Notification.State
CHANGELIST = reverse("admin:notifications_endpoint_changelist")


@pytest.fixture
def endpoint(merchant, deliver_apply_async):
    """An endpoint with one delivered and two undelivered (one exhausted) notifications."""
    notifications = shop_notifications(merchant, 3)
    Notification.objects.filter(pk=notifications[0].pk).update(state=State.DELIVERED)
    Notification.objects.filter(pk=notifications[1].pk).update(state=State.EXHAUSTED)
    return Endpoint.objects.get()


def disable(endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(
        state=Endpoint.State.DISABLED,
        disabled_at=timezone.now(),
        failing_since=timezone.now() - timedelta(days=5),
        consecutive_failures=200,
        attempts_total=200,
        failures_total=150,
    )


def test_the_changelist_shows_health_and_links_to_what_is_undelivered(admin_client, endpoint):
    disable(endpoint)

    page = admin_client.get(CHANGELIST).content.decode()

    assert "https://shop.example:443" in page and "Disabled" in page
    assert "25.0% of 200" in page  # success rate
    assert f"?endpoint={endpoint.pk}&amp;undelivered=yes" in page
    undelivered = admin_client.get(
        reverse("admin:notifications_notification_changelist"),
        {"endpoint": endpoint.pk, "undelivered": "yes"},
    )
    assert undelivered.status_code == 200 and "2 notifications" in undelivered.content.decode()


@pytest.mark.parametrize("chosen", ["\u00b2", "\u2460", "1x", "-1"])
def test_an_endpoint_filter_that_is_no_id_lists_nothing(admin_client, endpoint, chosen):
    """``?endpoint=²`` (``"²".isdigit()`` is True, ``int()`` refuses it) or any other value that
    is no id: an empty list, not a 500."""
    response = admin_client.get(
        reverse("admin:notifications_notification_changelist"), {"endpoint": chosen}
    )

    assert response.status_code == 200 and "0 notifications" in response.content.decode()


def test_every_admin_page_warns_of_a_disabled_endpoint(admin_client, endpoint):
    assert "is disabled since" not in admin_client.get(reverse("admin:index")).content.decode()

    disable(endpoint)

    for url in (reverse("admin:index"), CHANGELIST):
        page = admin_client.get(url).content.decode()
        assert "Endpoint https://shop.example:443" in page and "is disabled since" in page


def test_reenable_action_closes_the_circuit_and_is_logged(admin_client, endpoint, settings):
    disable(endpoint)

    response = admin_client.post(
        CHANGELIST, {"action": "reenable", "_selected_action": [endpoint.pk]}, follow=True
    )

    assert "Re-enabled 1 endpoint(s)" in response.content.decode()
    endpoint.refresh_from_db()
    assert (endpoint.state, endpoint.consecutive_failures) == (Endpoint.State.CLOSED, 0)
    assert LogEntry.objects.get().change_message == "Re-enabled."


def test_recover_action_asks_since_when_then_resends(admin_client, endpoint):
    disable(endpoint)
    chosen = {"action": "recover", "_selected_action": [endpoint.pk]}

    form = admin_client.post(CHANGELIST, chosen)
    assert form.status_code == 200 and 'name="since"' in form.content.decode()
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    done = admin_client.post(CHANGELIST, {**chosen, "since": since}, follow=True)

    assert "scheduled 2 undelivered notification(s)" in done.content.decode()
    assert Notification.objects.filter(state=State.PENDING).count() == 2
    assert Endpoint.objects.get().state == Endpoint.State.CLOSED


def test_view_only_staff_cannot_reenable(client, endpoint):
    """The actions need the change permission (ReadOnlyAdminMixin's "operate")."""
    client.force_login(staff_user("viewer", "view_endpoint"))
    disable(endpoint)

    client.post(CHANGELIST, {"action": "reenable", "_selected_action": [endpoint.pk]})

    assert Endpoint.objects.get().state == Endpoint.State.DISABLED


def test_endpoint_recover_command(endpoint, deliver_apply_async):
    disable(endpoint)
    out = StringIO()
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    call_command("endpoint_recover", "https://shop.example:443", "--since", since, stdout=out)

    assert "re-enabled; 2 undelivered notification(s)" in out.getvalue()
    assert Endpoint.objects.get().state == Endpoint.State.CLOSED


def test_undelivered_report_lists_each_endpoint_and_exits_1(endpoint):
    out = StringIO()

    with pytest.raises(SystemExit) as exit_status:
        call_command("notifications_undelivered", stdout=out)

    assert exit_status.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("https://shop.example:443")
    assert lines[1].split()[3:6] == ["1", "0", "1"]  # pending, sending, exhausted
    assert lines[-1] == "2 undelivered notification(s) on 1 endpoint(s)."


def create_merchant_with_ops_url(host: str, ops_url: str) -> None:
    call_command(
        "create_merchant", "Shop", "--allowed-host", host, "--ops-url", ops_url, stdout=StringIO()
    )


@pytest.mark.parametrize(
    ("ops_url", "reason"),
    [
        ("https://elsewhere.example/ops", "not among this merchant's allowed hosts"),
        ("http://127.0.0.1/ops", "loopback"),
    ],
)
def test_a_merchants_ops_url_is_refused_where_a_notify_url_would_be(settings, ops_url, reason):
    """create_merchant --ops-url: off the allowed hosts or refused by the SSRF guard, nothing
    is created."""
    from django.core.management import CommandError

    settings.NOTIFY_ALLOWED_NETWORKS = []
    with pytest.raises(CommandError, match=reason):
        create_merchant_with_ops_url("127.0.0.1", ops_url)
    assert not Merchant.objects.exists()


def test_a_merchants_ops_url_reaches_notifications():
    """An accepted ops URL is what the resolver hands to notifications."""
    from payments.selectors import merchant_ops_url

    create_merchant_with_ops_url("93.184.215.14", "https://93.184.215.14/ops")

    merchant = Merchant.objects.get()
    assert merchant_ops_url(merchant.app_id) == "https://93.184.215.14/ops"


def test_endpoint_recover_takes_a_time_without_a_zone_as_utc(endpoint, deliver_apply_async):
    disable(endpoint)
    out = StringIO()

    call_command("endpoint_recover", str(endpoint.pk), "--since", "2000-01-01T00:00", stdout=out)

    assert "since 2000-01-01T00:00:00+00:00" in out.getvalue()


def test_the_success_rate_shows_the_latest_window_beside_all_time(admin_client, endpoint):
    """An endpoint that recovered: its latest circuit window all succeeded while its
    lifetime rate still carries the outage; both are shown, the window with its start."""
    disable(endpoint)
    started = timezone.now() - timedelta(seconds=30)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        window_started_at=started, window_attempts=20, window_failures=0
    )

    page = admin_client.get(CHANGELIST).content.decode()

    assert f"100.0% of 20 from {started:%Y-%m-%d %H:%M:%S} UTC · 25.0% of 200" in page
