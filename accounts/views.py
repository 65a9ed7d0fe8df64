"""Pages for a logged-in user: balance and history, the recharge form, the return page."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from core.money import format_minor

from . import selectors, services
from .forms import RechargeForm
from .models import Account, Recharge
from .payments_client import PaymentsApiError, PaymentsClient

# Too many starts is a rate (429); too many pending is the account's state, which changes
# when one is paid, declined or expires, not by slowing down (409).
REFUSAL_STATUS = {services.RechargeRateExceeded: 429, services.RechargePendingLimit: 409}
HISTORY_PAGE_SIZE = 20


class LoginView(auth_views.LoginView):
    """Django's log-in page; in development (DEBUG) it also names the demo users."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "development": settings.DEBUG}


class LogoutView(auth_views.LogoutView):
    """Django's log-out, by POST only (a link or a prefetch must not log anyone out); a GET,
    as from a typed or bookmarked ``/logout/``, shows a page with the Log out button instead
    of a bare 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")


def wallet_required(view):
    """Log-in required, and a wallet: the view is called with the user's ``Account`` after
    the request. A login without one (a merchant's portal user, staff) gets 403 with a page
    saying where such logins belong, not a bare 404."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        account = Account.objects.filter(user=request.user).first()
        if account is None:
            return TemplateResponse(request, "accounts/no_wallet.html", status=403)
        return view(request, account, *args, **kwargs)

    return wrapped


@require_GET
@wallet_required
def home(request, account):
    """Balance, the recharge form and the history, ``HISTORY_PAGE_SIZE`` recharges a page
    (``?page=N``, newest first); a page number that does not exist is a 404."""
    return _render_home(request, account, _form(account))


@require_POST
@wallet_required
def recharge_create(request, account):
    """Start a recharge and send the browser to the payments cashier."""
    form = _form(account, request.POST)
    if not form.is_valid():
        return _render_home(request, account, form, status=400)
    try:
        recharge = services.recharge_start(
            account=account,
            amount=form.cleaned_data["amount"],
            client=PaymentsClient.from_settings(),
        )
    except services.RechargeRefused as exc:
        messages.error(request, str(exc))
        return _render_home(request, account, form, status=REFUSAL_STATUS[type(exc)])
    except PaymentsApiError:
        messages.error(request, "Payments is unavailable right now; please try again shortly.")
        return redirect("accounts:home")
    return redirect(recharge.cashier_url)


@require_GET
@login_required
def recharge_status(request, out_trade_no):
    """The ``return_url``: while pending, a way back to the cashier ("Continue to pay") and a
    page that refreshes itself until the result is known; then how it ended."""
    recharge = get_object_or_404(Recharge, out_trade_no=out_trade_no, account__user=request.user)
    context = {
        "recharge": recharge,
        "amount": format_minor(recharge.amount, recharge.currency),
        "pending": recharge.status == Recharge.Status.PENDING,
    }
    return render(request, "accounts/recharge_status.html", context)


def _form(account: Account, data=None) -> RechargeForm:
    return RechargeForm(
        data,
        currency=account.currency,
        min_amount=settings.PAYMENTS_MIN_AMOUNT,
        max_amount=settings.PAYMENTS_MAX_AMOUNT,
    )


def _render_home(request, account: Account, form: RechargeForm, status: int = 200):
    paginator = Paginator(selectors.recharges_for_user(user=request.user), HISTORY_PAGE_SIZE)
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except InvalidPage as exc:
        raise Http404(f"No such page of recharges: {exc}") from exc
    recharges = [(recharge, format_minor(recharge.amount, recharge.currency)) for recharge in page]
    context = {
        "account": account,
        "balance": format_minor(account.balance, account.currency),
        "recharges": recharges,
        "page": page,
        "form": form,
    }
    return render(request, "accounts/home.html", context, status=status)
