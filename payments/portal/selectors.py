"""What a portal member reads: always through the member's merchant, never another's."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils.crypto import salted_hmac

from notifications.selectors import notification_subject_for_webhook_id

from ..models import Merchant, MerchantMember, RechargeOrder
from ..selectors import recharge_orders_for_merchant, recharge_orders_with_notification_state


def api_key_version(merchant: Merchant) -> str:
    """What identifies the merchant's current API key to a roll form (16 hex digits): an
    HMAC of its stored hash under the project's secret, so it changes with every roll and
    tells nothing about the key or its hash. A merchant left without a key (``revoke_api_key
    --no-new-key``) has a version too, so the portal can issue one."""
    return salted_hmac("portal-api-key-version", merchant.api_key_hash).hexdigest()[:16]


def merchant_member_for_user(*, user: AbstractBaseUser) -> MerchantMember | None:
    """The user's membership (with its merchant), or None for a user of no merchant."""
    if not user.is_authenticated:
        return None
    return MerchantMember.objects.select_related("merchant", "user").filter(user=user).first()


def merchant_orders_search(
    *, member: MerchantMember, text: str = "", status: int | None = None
) -> QuerySet:
    """The member's merchant's orders, newest first, each with ``notification_state``.

    ``text`` is any identifier a customer or the merchant's own systems quote, matched
    exactly: out_trade_no, tx_no, account_no, or a notification's webhook-id (``msg_…``).
    ``status`` (0, 100, 200) narrows to one status.
    """
    orders = recharge_orders_for_merchant(merchant=member.merchant)
    text = text.strip()
    if text:
        matches = Q(out_trade_no=text) | Q(tx_no=text) | Q(account_no=text)
        subject = notification_subject_for_webhook_id(
            webhook_id=text, sender_key=member.merchant.app_id
        )
        if subject:
            matches |= Q(tx_no=subject)
        orders = orders.filter(matches)
    if status is not None:
        orders = orders.filter(status=status)
    return recharge_orders_with_notification_state(orders=orders.order_by("-created_at", "-pk"))


def merchant_order(*, member: MerchantMember, tx_no: str) -> RechargeOrder:
    """One of the member's merchant's orders. Raises ``RechargeOrder.DoesNotExist`` for an
    unknown tx_no and for another merchant's alike."""
    return recharge_orders_for_merchant(merchant=member.merchant).get(tx_no=tx_no)
