from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.management.lookups import merchant_for_command
from payments.services import merchant_webhook_secret_roll


class Command(BaseCommand):
    help = (
        "Give a merchant a new webhook secret and print it (shown only once). During the "
        "overlap every notification is signed with both the new and the old secret."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_id")
        parser.add_argument(
            "--overlap",
            type=float,
            default=None,
            metavar="SECONDS",
            help="How long the old secret keeps signing too (default "
            "PAYMENTS_WEBHOOK_SECRET_OVERLAP; 0 drops it at once).",
        )

    def handle(self, *args, app_id, overlap, **options):
        merchant = merchant_for_command(app_id=app_id)
        if overlap is not None and overlap < 0:
            raise CommandError("--overlap must be 0 or more seconds")
        seconds = settings.PAYMENTS_WEBHOOK_SECRET_OVERLAP if overlap is None else overlap
        secret = merchant_webhook_secret_roll(merchant=merchant, overlap=timedelta(seconds=seconds))
        self.stdout.write(f"webhook_secret: {secret}")
        if merchant.previous_secret_expires_at:
            until = merchant.previous_secret_expires_at.isoformat(timespec="seconds")
            self.stdout.write(f"The old secret also signs every notification until {until}.")
        else:
            self.stdout.write(
                "The old secret stops signing within NOTIFY_SECRET_CACHE_SECONDS "
                f"({settings.NOTIFY_SECRET_CACHE_SECONDS:g} s), when every worker has asked again."
            )
        self.stdout.write("Store the new secret now: it is not shown again.")
