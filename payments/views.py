"""The cashier: the sandbox payment channel's HTML page."""

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from core.money import format_minor

from . import services
from .models import RechargeOrder

ACTIONS = {"pay": services.recharge_order_pay, "decline": services.recharge_order_decline}


@require_http_methods(["GET", "POST"])
def cashier(request, tx_no):
    """GET shows the order; POST ``action=pay|decline`` finishes it and sends the browser to
    the merchant's ``return_url``. A second POST on a final order changes nothing; a payment
    refused (order past its time-to-live, merchant deactivated) is 409 with the reason."""
    order = get_object_or_404(RechargeOrder, tx_no=tx_no)
    context = {"order": order, "amount": format_minor(order.amount, order.currency)}
    if request.method == "POST":
        action = ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            context["error"] = "Choose Pay or Decline."
            return render(request, "payments/cashier.html", context, status=400)
        try:
            action(tx_no=tx_no)
        except services.PaymentRefused as exc:
            order.refresh_from_db()
            context["error"] = str(exc)
            return render(request, "payments/cashier.html", context, status=409)
        return HttpResponseRedirect(order.return_url)
    return render(request, "payments/cashier.html", context)
