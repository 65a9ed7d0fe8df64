from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from notifications.models import Endpoint
from notifications.services import endpoint_enable, endpoint_recover


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


class Command(BaseCommand):
    help = (
        "Re-enable an endpoint (its circuit closed, counts reset) and, with --since, resend "
        "every notification to it created since then that it has not acknowledged."
    )

    def add_arguments(self, parser):
        parser.add_argument("endpoint", help="The endpoint's id, or its origin (https://host:443).")
        parser.add_argument(
            "--since",
            type=_moment,
            metavar="ISO-8601",
            help="Resend undelivered since then (UTC unless given).",
        )
        parser.add_argument("--until", type=_moment, metavar="ISO-8601", help="…and before then.")

    def handle(self, *args, endpoint, since, until, **options):
        found = Endpoint.objects.filter(
            **(
                {"pk": endpoint}
                if endpoint.isascii() and endpoint.isdigit()
                else {"origin": endpoint}
            )
        )
        if found.count() != 1:
            raise CommandError(f"{found.count()} endpoints match {endpoint!r}; give its id")
        target = found.get()
        if since is None:
            if until is not None:
                raise CommandError("--until needs --since")
            endpoint_enable(endpoint_id=target.pk)
            self.stdout.write(f"{target.origin} ({target.sender_key}) re-enabled.")
            return
        count = endpoint_recover(endpoint_id=target.pk, since=since, until=until)
        self.stdout.write(
            f"{target.origin} ({target.sender_key}) re-enabled; {count} undelivered "
            f"notification(s) created since {since.isoformat()} scheduled to be sent now."
        )
