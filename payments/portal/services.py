"""What a portal member does: join a merchant, resend, recover an endpoint, roll credentials.

Every change is recorded twice, as staff's admin actions are: a ``LogEntry`` on the object
(its History page in the admin, and the admin index's recent actions) and a line on the
``portal`` logger naming the user and the merchant. A viewer's attempt, or any member's of a
deactivated merchant, is refused with ``PermissionDenied`` here too, not only by the view.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from notifications.selectors import endpoints_for_sender
from notifications.services import endpoint_enable, endpoint_recover

from ..models import Merchant, MerchantMember, RechargeOrder
from ..selectors import recharge_orders_for_merchant
from ..services import (
    merchant_api_key_revoke,
    merchant_webhook_secret_roll,
    recharge_order_resend_notifications,
)
from .selectors import api_key_version

logger = logging.getLogger("portal")

# The most orders one "Resend selected" may name: one page of the list and then some.
RESEND_MAX = 100


@dataclass(frozen=True)
class MemberAdded:
    """``merchant_member_add``'s result: ``password`` is the new user's, shown once, or None
    when an existing user was linked."""

    member: MerchantMember
    password: str | None


@dataclass(frozen=True)
class SecretRolled:
    """A new webhook secret (shown once) and until when the old one still signs (None: it
    stopped at once)."""

    secret: str
    previous_expires_at: datetime | None


def merchant_member_add(*, merchant: Merchant, username: str, role: str) -> MemberAdded:
    """Give ``username`` the portal of ``merchant`` with ``role`` ("admin" or "viewer").

    A new user is created with a random password (returned, to be shown once); an existing
    one is linked, or has its role changed if it already belongs to this merchant. Raises
    ``ValueError`` for an unknown role, or a user already a member of another merchant.
    """
    if role not in MerchantMember.Role.values:
        raise ValueError(f"role must be one of {', '.join(MerchantMember.Role.values)}")
    users = get_user_model().objects
    password = None
    with transaction.atomic():
        user = users.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = users.create_user(username, password=password)
        member, _ = MerchantMember.objects.select_for_update().get_or_create(
            user=user, defaults={"merchant": merchant, "role": role}
        )
        if member.merchant_id != merchant.pk:
            raise ValueError(f"user {username!r} is already a member of {member.merchant}")
        if member.role != role:
            member.role = role
            member.save(update_fields=["role"])
    return MemberAdded(member, password)


def member_orders_resend(*, member: MerchantMember, tx_nos: list[str]) -> int:
    """Schedule an immediate attempt of every notification of the member's orders named by
    ``tx_nos`` (at most ``RESEND_MAX``); returns how many notifications were scheduled (an
    order still pending has none; one with an attempt in flight is skipped).

    Raises ``PermissionDenied`` (``operate_refusal``), ``ValueError`` for none or too many, and
    ``RechargeOrder.DoesNotExist`` when a tx_no is not one of the merchant's orders (nothing
    is resent then).
    """
    _require_operator(member)
    wanted = set(tx_nos)
    if not wanted or len(wanted) > RESEND_MAX:
        raise ValueError(f"Choose between 1 and {RESEND_MAX} orders.")
    orders = list(recharge_orders_for_merchant(merchant=member.merchant).filter(tx_no__in=wanted))
    if len(orders) != len(wanted):
        raise RechargeOrder.DoesNotExist("not every tx_no names one of this merchant's orders")
    scheduled = 0
    for order in orders:
        count = recharge_order_resend_notifications(tx_no=order.tx_no)
        scheduled += count
        _audit(member, order, f"Resend notification from the portal: {count} scheduled.")
    return scheduled


class RollOverlapping(Exception):
    """A webhook secret roll refused while the previous one's overlap lasts: a roll keeps one
    previous secret, so it would stop at once the secret the merchant's receiver still has.
    ``until`` is when the overlap ends."""

    def __init__(self, until: datetime):
        super().__init__(
            f"The previous webhook secret still signs until {until:%Y-%m-%d %H:%M:%S %Z}; "
            "rolling again now would stop it at once. Roll again after that."
        )
        self.until = until


def member_webhook_secret_roll(*, member: MerchantMember) -> SecretRolled:
    """Roll the merchant's webhook secret (``merchant_webhook_secret_roll``, the default
    overlap). Raises ``PermissionDenied`` (``operate_refusal``) and ``RollOverlapping`` while the
    previous roll's overlap lasts (checked under the merchant's row lock, so two presses at
    once roll once)."""
    with transaction.atomic():
        merchant = _lock_for_operator(member)
        until = merchant.previous_secret_expires_at
        if until is not None and until > timezone.now():
            raise RollOverlapping(until)
        secret = merchant_webhook_secret_roll(merchant=merchant)
    _audit(member, merchant, "Webhook secret rolled from the portal.")
    return SecretRolled(secret, merchant.previous_secret_expires_at)


class KeyRolledMeanwhile(Exception):
    """An API key roll refused because the key it was asked for (``api_key_version``, as the
    credentials page showed it) is no longer the merchant's: the form was sent again (a
    refreshed result page) or another admin rolled it first. Rolling once more would revoke
    the key just shown."""

    def __init__(self):
        super().__init__(
            "The API key was already rolled since this page was loaded (a refresh sends the "
            "form again); the new key was shown once. Open Credentials to roll it again."
        )


def member_api_key_roll(*, member: MerchantMember, version: str) -> str:
    """Revoke the merchant's API key at once and return the new one (shown once), provided
    its current key is still ``version`` (``api_key_version``, checked under the merchant's
    row lock). Raises ``PermissionDenied`` (``operate_refusal``) and ``KeyRolledMeanwhile``."""
    with transaction.atomic():
        _lock_for_operator(member)
        if version != api_key_version(member.merchant):
            raise KeyRolledMeanwhile
        key = merchant_api_key_revoke(merchant=member.merchant, issue_new=True)
    _audit(member, member.merchant, "API key revoked and a new one issued from the portal.")
    return key


def _lock_for_operator(member: MerchantMember) -> Merchant:
    """The member's merchant, its row locked and reloaded (inside a transaction), once
    ``_require_operator`` passes on it: a deactivation or another roll committed meanwhile
    counts."""
    member.merchant = Merchant.objects.select_for_update().get(pk=member.merchant_id)
    _require_operator(member)
    return member.merchant


def member_endpoint_recover(*, member: MerchantMember, endpoint_id: int, since: datetime) -> int:
    """Re-enable one of the merchant's endpoints and resend what it has not acknowledged
    since ``since`` (``endpoint_recover``); returns how many were rescheduled. Raises
    ``PermissionDenied`` (``operate_refusal``), ``Endpoint.DoesNotExist`` for another sender's."""
    _require_operator(member)
    endpoint = endpoints_for_sender(sender_key=member.merchant.app_id).get(pk=endpoint_id)
    count = endpoint_recover(endpoint_id=endpoint.pk, since=since)
    _audit(
        member,
        member.merchant,
        f"Endpoint {endpoint.origin} recovered from the portal since {since:%Y-%m-%d %H:%M:%S %Z}:"
        f" {count} rescheduled.",
    )
    return count


def member_endpoint_enable(*, member: MerchantMember, endpoint_id: int) -> None:
    """Re-enable one of the merchant's endpoints (``endpoint_enable``). Raises
    ``PermissionDenied`` (``operate_refusal``), ``Endpoint.DoesNotExist`` for another sender's."""
    _require_operator(member)
    endpoint = endpoints_for_sender(sender_key=member.merchant.app_id).get(pk=endpoint_id)
    endpoint_enable(endpoint_id=endpoint.pk)
    _audit(member, member.merchant, f"Endpoint {endpoint.origin} re-enabled from the portal.")


def _require_operator(member: MerchantMember) -> None:
    if refusal := member.operate_refusal:
        raise PermissionDenied(refusal)


def _audit(member: MerchantMember, obj, message: str) -> None:
    """Record ``message`` on ``obj``'s admin History and on the ``portal`` logger."""
    LogEntry.objects.log_actions(
        member.user_id, [obj], CHANGE, change_message=message, single_object=True
    )
    logger.info(
        "portal action by %s of %s on %s %s: %s",
        member.user.get_username(),
        member.merchant.app_id,
        obj._meta.label,
        obj.pk,
        message,
    )
