"""The portal's pages: thin, calling payments/portal's selectors and services (and, for what
they show of deliveries, notifications' selectors).

Every page needs a logged-in member of a merchant (``member_required``) and reads only that
merchant's rows: another merchant's order or endpoint is a 404, exactly like an unknown one.
Changes are POSTs (CSRF-protected by the middleware) that only an admin member may make
(``operator_required``); credentials are shown once, on the page the POST answers, never
stored for a later page, and that page is never cached.
"""

import json
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.throttling import throttle_hit
from notifications.queues import is_queue_target
from notifications.selectors import (
    endpoint_recent_success_rate,
    endpoint_success_rate,
    endpoints_for_sender,
    notifications_for_subject,
)

from ..models import RechargeOrder
from . import selectors, services
from .forms import OrderSearchForm, RecoverForm, ResendForm
from .guide import contract_html

PAGE_SIZE = 50
LOGIN = "payments:portal:login"
# The guide's example host while the merchant has no allowed host yet (the page says so).
EXAMPLE_HOST = "your-shop.example"


class PortalLoginView(auth_views.LoginView):
    """Django's log-in (django-axes counts its failures as on /login/), landing on the
    orders list; in development (DEBUG) it names the demo portal user."""

    template_name = "payments/portal/login.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "development": settings.DEBUG}

    def get_default_redirect_url(self):
        return reverse("payments:portal:orders")


def member_required(view):
    """Log-in required; a user who is no merchant's member gets 403; the view is called
    with the ``MerchantMember`` after the request."""

    @wraps(view)
    @login_required(login_url=LOGIN)
    def wrapped(request, *args, **kwargs):
        member = selectors.merchant_member_for_user(user=request.user)
        if member is None:
            return render(request, "payments/portal/not_member.html", status=403)
        return view(request, member, *args, **kwargs)

    return wrapped


def operator_required(view):
    """After ``member_required``: a viewer, or any member of a deactivated merchant, gets 403
    with the reason, and nothing changes."""

    @wraps(view)
    def wrapped(request, member, *args, **kwargs):
        if refusal := member.operate_refusal:
            return refused(request, member, refusal, status=403)
        return view(request, member, *args, **kwargs)

    return wrapped


def operator_post(view):
    """A change: ``require_POST``, ``member_required`` and ``operator_required``, in that
    order, around ``view``."""
    return require_POST(member_required(operator_required(view)))


def resend_throttled(view):
    """After ``operator_required``: a press that sends notifications again now (resend,
    recover, re-enable) spends the merchant's ``PAYMENTS_PORTAL_RESEND_RATE``; past it, 429
    with ``Retry-After`` and nothing changes."""

    @wraps(view)
    def wrapped(request, member, *args, **kwargs):
        wait = throttle_hit(
            key=f"portal-resend:{member.merchant_id}",
            rate=settings.PAYMENTS_PORTAL_RESEND_RATE,
            scope="portal resend",
        )
        if wait is None:
            return view(request, member, *args, **kwargs)
        reason = f"Too many resends; try again in {wait:.0f} s."
        response = refused(request, member, reason, status=429)
        response["Retry-After"] = str(max(1, round(wait)))
        return response

    return wrapped


@require_GET
@member_required
def orders(request, member):
    """The merchant's orders, newest first, ``PAGE_SIZE`` a page, searched and filtered."""
    form = OrderSearchForm(request.GET)
    if not form.is_valid():
        context = {"member": member, "form": form, "page": None}
        return render(request, "payments/portal/orders.html", context, status=400)
    found = selectors.merchant_orders_search(
        member=member, text=form.cleaned_data["q"], status=form.cleaned_data["status"]
    )
    try:
        page = Paginator(found, PAGE_SIZE).page(request.GET.get("page") or 1)
    except InvalidPage as exc:
        raise Http404(str(exc)) from exc
    query = request.GET.copy()
    query.pop("page", None)
    context = {"member": member, "form": form, "page": page, "query": query.urlencode()}
    return render(request, "payments/portal/orders.html", context)


@require_GET
@member_required
def order_detail(request, member, tx_no):
    """One order, its notifications, each with its body as sent and every attempt."""
    order = _order_or_404(member, tx_no)
    notifications = [
        {
            "row": n,
            "body": _pretty(n.body),
            "attempts": list(n.attempts.all()),
            "queue": is_queue_target(n.target_url),
        }
        for n in notifications_for_subject(subject=order.tx_no)
    ]
    context = {"member": member, "order": order, "notifications": notifications}
    return render(request, "payments/portal/order.html", context)


@operator_post
@resend_throttled
def orders_resend(request, member):
    """Resend the notifications of the orders ticked (``tx_no``, repeated; at most
    ``RESEND_MAX``), then back to where the form was (``next``, this site only)."""
    form = ResendForm(request.POST)
    if not form.is_valid():
        return refused(request, member, " ".join(form.errors["tx_no"]))
    tx_nos = form.cleaned_data["tx_no"]
    try:
        scheduled = services.member_orders_resend(member=member, tx_nos=tx_nos)
    except ValueError as exc:
        return refused(request, member, str(exc))
    except RechargeOrder.DoesNotExist as exc:
        raise Http404("No such order.") from exc
    if scheduled:
        messages.success(
            request,
            f"Scheduled {scheduled} notification(s) of {len(set(tx_nos))} order(s) to be sent "
            "again now.",
        )
    else:
        messages.warning(
            request,
            "Nothing was scheduled: a pending order has no notification yet, one being sent "
            "right now is left to finish, and one delivered long ago has been deleted (query "
            "such an order through the API).",
        )
    return redirect(_next_or(request, reverse("payments:portal:orders")))


@require_GET
@member_required
def endpoints(request, member):
    """The merchant's endpoints: health, success rate, last success and failure, undelivered
    count, and (admins) recover and re-enable."""
    rows = [
        {
            "endpoint": e,
            "success_rate": endpoint_success_rate(e),
            "recent_success_rate": endpoint_recent_success_rate(e),
        }
        for e in endpoints_for_sender(sender_key=member.merchant.app_id)
    ]
    context = {"member": member, "rows": rows, "form": RecoverForm()}
    return render(request, "payments/portal/endpoints.html", context)


@operator_post
@resend_throttled
def endpoint_recover(request, member, endpoint_id):
    """Re-enable the endpoint and resend what it has not acknowledged since ``since``."""
    form = RecoverForm(request.POST)
    if not form.is_valid():
        return refused(request, member, f"Since: {'; '.join(form.errors['since'])}")
    try:
        count = services.member_endpoint_recover(
            member=member, endpoint_id=endpoint_id, since=form.cleaned_data["since"]
        )
    except ObjectDoesNotExist as exc:  # notifications' Endpoint.DoesNotExist
        raise Http404("No such endpoint.") from exc
    messages.success(
        request, f"Re-enabled; {count} undelivered notification(s) scheduled to be sent now."
    )
    return redirect("payments:portal:endpoints")


@operator_post
@resend_throttled
def endpoint_enable(request, member, endpoint_id):
    """Re-enable a disabled endpoint: its due notifications go at once."""
    try:
        services.member_endpoint_enable(member=member, endpoint_id=endpoint_id)
    except ObjectDoesNotExist as exc:  # notifications' Endpoint.DoesNotExist
        raise Http404("No such endpoint.") from exc
    messages.success(request, "Re-enabled: its due notifications are being sent.")
    return redirect("payments:portal:endpoints")


@require_GET
@member_required
def credentials(request, member):
    """The merchant's app id, allowed hosts and secret overlap; (admins) the roll buttons."""
    context = {
        "member": member,
        "now": timezone.now(),
        "api_key_version": selectors.api_key_version(member.merchant),
    }
    return render(request, "payments/portal/settings.html", context)


@never_cache
@operator_post
def webhook_secret_roll(request, member):
    """Roll the webhook secret and show the new one, this once; 409 while the previous roll's
    overlap lasts (``RollOverlapping``)."""
    try:
        rolled = services.member_webhook_secret_roll(member=member)
    except services.RollOverlapping as exc:
        return refused(request, member, str(exc), status=409)
    context = {
        "member": member,
        "what": "webhook secret",
        "value": rolled.secret,
        "previous_expires_at": rolled.previous_expires_at,
    }
    return render(request, "payments/portal/shown_once.html", context)


@never_cache
@operator_post
def api_key_roll(request, member):
    """Revoke the API key and show the new one, this once; 409 when the form names a key
    already rolled (``KeyRolledMeanwhile``: a refreshed result page sends it again)."""
    try:
        key = services.member_api_key_roll(member=member, version=request.POST.get("version", ""))
    except services.KeyRolledMeanwhile as exc:
        return refused(request, member, str(exc), status=409)
    context = {"member": member, "what": "API key", "value": key}
    return render(request, "payments/portal/shown_once.html", context)


@require_GET
@member_required
def guide(request, member):
    """The integration guide with this merchant's app id, hosts and the API's URL filled in,
    followed by the notification contract (docs/notifications.md). A merchant without an
    allowed host yet gets ``EXAMPLE_HOST`` in the examples."""
    hosts = member.merchant.allowed_hosts
    context = {
        "member": member,
        "api_url": settings.PAYMENTS_API_URL.rstrip("/"),
        "host": hosts[0].lstrip(".") if hosts else EXAMPLE_HOST,
        "contract": contract_html(),
    }
    return render(request, "payments/portal/guide.html", context)


def refused(request, member, reason: str, *, status: int = 400):
    """The page saying why nothing was changed: ``reason`` shown to ``member``, answered with
    ``status`` (400 bad input, 403 not allowed, 409 conflict, 429 too many)."""
    context = {"member": member, "reason": reason}
    return render(request, "payments/portal/refused.html", context, status=status)


def _order_or_404(member, tx_no: str) -> RechargeOrder:
    try:
        return selectors.merchant_order(member=member, tx_no=tx_no)
    except RechargeOrder.DoesNotExist as exc:
        raise Http404("No such order.") from exc


def _pretty(body: str) -> str:
    """The frozen JSON body indented for reading (the bytes sent are compact)."""
    return json.dumps(json.loads(body), indent=2, ensure_ascii=False)


def _next_or(request, default: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default
