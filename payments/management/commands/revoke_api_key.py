from django.core.management.base import BaseCommand

from payments.management.lookups import merchant_for_command
from payments.services import merchant_api_key_revoke


class Command(BaseCommand):
    help = "Revoke a merchant's API key at once and print a newly issued one (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("app_id")
        parser.add_argument(
            "--no-new-key",
            action="store_true",
            help="Only revoke: the merchant is left without a working key.",
        )

    def handle(self, *args, app_id, no_new_key, **options):
        merchant = merchant_for_command(app_id=app_id)
        api_key = merchant_api_key_revoke(merchant=merchant, issue_new=not no_new_key)
        self.stdout.write(f"The API key of {merchant.app_id} is revoked.")
        if api_key:
            self.stdout.write(f"api_key:        {api_key}")
            self.stdout.write("Store it now: it is kept only as a hash.")
