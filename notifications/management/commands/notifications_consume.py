import signal

from celery import current_app
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from notifications.queues import NAME
from notifications.subscriber import Subscriber


class Command(BaseCommand):
    help = (
        "Consume the notifications published for queue target queue://NAME (scheme 1) and "
        "hand each to HANDLER; acknowledged ones are reported back to the notifier. Runs "
        "until SIGTERM or SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The subscriber's queue name, [a-z0-9-]{1,40}.")
        parser.add_argument(
            "--handler",
            required=True,
            metavar="DOTTED.PATH",
            help="f(body: bytes, headers: dict) -> (ok: bool, reason: str).",
        )

    def handle(self, *args, name, handler, **options):
        if not NAME.match(name):
            raise CommandError(f"queue name {name!r}: use 1-40 lower-case letters, digits or -")
        try:
            function = import_string(handler)
        except ImportError as exc:
            raise CommandError(f"--handler {handler!r}: {exc}") from exc
        with current_app.connection_for_read(heartbeat=30) as connection:
            subscriber = Subscriber(connection=connection, name=name, handler=function)

            def stop(signum, frame):  # finish the message in hand, then leave
                subscriber.should_stop = True

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            self.stdout.write(f"consuming queue://{name} with {handler}")
            subscriber.run()
