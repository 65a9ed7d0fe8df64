"""``python manage.py audit``: do payments and accounts agree? Read-only; exit 1 if not."""

from django.core.management.base import BaseCommand, CommandError

from audit.checks import audit
from core.money import format_minor
from payments.models import Merchant


class Command(BaseCommand):
    help = (
        "Compare payments' recharge orders with accounts' recharges, ledger and balances and "
        "list every disagreement: succeeded but not credited (and how long ago), credited but "
        "not succeeded, credited twice, amounts that differ, recharges left open although "
        "payments has a final answer, exhausted notifications. Reads only; safe to run at any "
        "time (on a live system a very recent 'not credited' is a notification in flight: see "
        "its age). Exits 1 when anything is listed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--merchant",
            metavar="APP_ID",
            help="Only this merchant's orders (default: all, which suits the one-wallet setup).",
        )
        parser.add_argument(
            "--accounts", action="store_true", help="Also print every account's three totals."
        )

    def handle(self, *args, merchant=None, accounts=False, **options):
        only = None
        if merchant is not None:
            only = Merchant.objects.filter(app_id=merchant).first()
            if only is None:
                raise CommandError(f"no merchant with app_id {merchant!r}")
        report = audit(merchant=only)
        if accounts:
            for totals in report.accounts:
                currency = totals.currency
                self.stdout.write(
                    f"{totals.account_no}: succeeded {format_minor(totals.succeeded, currency)} "
                    f"({totals.orders}), ledger {format_minor(totals.credited, currency)} "
                    f"({totals.credits}), balance {format_minor(totals.balance, currency)}"
                    f"{'' if totals.balanced else '  <- differs'}"
                )
        problems = report.problems()
        for line in problems:
            self.stdout.write(line)
        summary = f"{len(report.accounts)} account(s) checked, {len(problems)} disagreement(s)"
        if problems:
            raise CommandError(summary, returncode=1)
        self.stdout.write(self.style.SUCCESS(f"books agree: {summary}"))
