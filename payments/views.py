"""The cashier: the sandbox payment channel's HTML page."""

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from core.money import format_minor

from . import services
from .models import RechargeOrder
from .selectors import recharge_order_deadline

ACTIONS = {
    "pay": services.recharge_order_pay,
    "decline": services.recharge_order_decline,
    "cancel": services.recharge_order_cancel,
}
PAID_NOTICE = "This order has already been paid."
# What the page says of an order already failed, by its failure_reason.
FAILED_NOTICES = {
    "expired": "This order expired before it was paid.",
    "declined": "This order was declined; nothing was paid.",
    "cancelled": "This order was cancelled; nothing was paid.",
}
FAILED_NOTICE = "This order has already failed; nothing was paid."


@require_http_methods(["GET", "POST"])
def cashier(request, tx_no):
    """GET shows the order: its merchant, amount and the time left to pay it. POST
    ``action=pay|decline|cancel`` finishes it and sends the browser to the merchant's
    ``return_url``. A second POST on a final order changes nothing; a payment refused (order
    past its time-to-live, merchant deactivated) is 409 with the reason."""
    order = get_object_or_404(RechargeOrder.objects.select_related("merchant"), tx_no=tx_no)
    if request.method == "POST":
        action = ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            return _render(
                request, order, error="Choose Pay, Decline or Cancel payment.", status=400
            )
        try:
            action(tx_no=tx_no)
        except services.PaymentRefused as exc:
            order.refresh_from_db()
            return _render(request, order, error=str(exc), status=409)
        return HttpResponseRedirect(order.return_url)
    return _render(request, order)


def _render(request, order: RechargeOrder, *, error: str = "", status: int = 200):
    # The deadline of the sandbox channel is the order's time-to-live; the page counts down
    # to it from the seconds left, so the payer's clock being off does not matter.
    deadline = recharge_order_deadline(order)
    context = {
        "order": order,
        "amount": format_minor(order.amount, order.currency),
        "deadline": deadline,
        "seconds_left": max(0, int((deadline - timezone.now()).total_seconds())),
        "final_notice": _final_notice(order),
        "error": error,
    }
    return render(request, "payments/cashier.html", context, status=status)


def _final_notice(order: RechargeOrder) -> str:
    if order.status == RechargeOrder.Status.SUCCEEDED:
        return PAID_NOTICE
    return FAILED_NOTICES.get(order.failure_reason, FAILED_NOTICE)
