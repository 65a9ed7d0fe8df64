from django.core.management.base import BaseCommand

from notifications.selectors import endpoints_undelivered_report


class Command(BaseCommand):
    help = (
        "Every endpoint with notifications it has not acknowledged: its health, how many are "
        "pending, in flight and exhausted, and the oldest. Exits 1 when there are any."
    )

    def handle(self, *args, **options):
        rows = list(endpoints_undelivered_report())
        if not rows:
            self.stdout.write("Every notification has been delivered.")
            return
        self.stdout.write(
            f"{'endpoint':<45} {'sender':<22} {'state':<10} {'pending':>8} {'sending':>8} "
            f"{'exhausted':>9}  oldest"
        )
        for endpoint in rows:
            self.stdout.write(
                f"{endpoint.origin[:45]:<45} {endpoint.sender_key[:22]:<22} {endpoint.state:<10} "
                f"{endpoint.pending:>8} {endpoint.sending:>8} {endpoint.exhausted:>9}  "
                f"{endpoint.oldest:%Y-%m-%d %H:%M:%S}"
            )
        total = sum(endpoint.undelivered for endpoint in rows)
        self.stdout.write(f"{total} undelivered notification(s) on {len(rows)} endpoint(s).")
        raise SystemExit(1)
