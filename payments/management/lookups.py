"""What payments' management commands look up from their arguments."""

from django.core.management.base import CommandError

from payments.models import Merchant


def merchant_for_command(*, app_id: str) -> Merchant:
    """The merchant whose ``app_id`` a command was given. Raises ``CommandError`` (the
    command stops, saying so) when there is none."""
    merchant = Merchant.objects.filter(app_id=app_id).first()
    if merchant is None:
        raise CommandError(f"no merchant with app_id {app_id!r}")
    return merchant
