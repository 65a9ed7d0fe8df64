from django.core.management.base import BaseCommand, CommandError

from payments.models import Merchant, MerchantMember
from payments.portal.services import merchant_member_add


class Command(BaseCommand):
    help = (
        "Give a user a merchant's portal (/portal/): a new user gets a random password, "
        "printed once; an existing one is linked (or has its role changed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_id")
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=MerchantMember.Role.values,
            default=MerchantMember.Role.ADMIN,
            help="admin: may also resend and roll credentials; viewer: reads only.",
        )

    def handle(self, *args, app_id, username, role, **options):
        merchant = Merchant.objects.filter(app_id=app_id).first()
        if merchant is None:
            raise CommandError(f"no merchant with app_id {app_id!r}")
        write_member(self.stdout, merchant=merchant, username=username, role=role)


def write_member(stdout, *, merchant: Merchant, username: str, role: str) -> None:
    """Add the member and print its user (and a new user's password, shown once). Raises
    ``CommandError`` for a user of another merchant."""
    try:
        added = merchant_member_add(merchant=merchant, username=username, role=role)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    stdout.write(f"portal user:    {username} ({role}) at /portal/")
    if added.password:
        stdout.write(f"portal password: {added.password}  (shown only once)")
