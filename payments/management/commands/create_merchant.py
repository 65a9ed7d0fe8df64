from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.models import Merchant
from payments.services import merchant_create

from .merchant_member_add import write_member


class Command(BaseCommand):
    help = "Onboard a merchant; prints its app_id, API key and webhook secret (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--dev-credentials",
            action="store_true",
            help="Development only: use the fixed, fake demo credentials the accounts app is "
            "configured with by default; if that merchant exists, only --portal-user applies.",
        )
        parser.add_argument(
            "--allowed-host",
            action="append",
            dest="allowed_hosts",
            metavar="HOST",
            help="A host its notify_url and return_url may name (repeatable; '.example.com' "
            "covers subdomains). Default: PAYMENTS_DEFAULT_ALLOWED_HOSTS.",
        )

        parser.add_argument(
            "--notify-queue",
            action="append",
            dest="notify_queues",
            metavar="NAME",
            help="A queue its notify_url may name as queue://NAME, to be consumed by an "
            "internal subscriber (scheme 1; repeatable).",
        )
        parser.add_argument(
            "--ops-url",
            default="",
            metavar="URL",
            help="Where operational notifications (endpoint.disabled) go; an allowed host.",
        )
        parser.add_argument(
            "--portal-user",
            metavar="USERNAME",
            help="Also give this user the merchant's portal as admin: a new user gets a "
            "random password, printed once; an existing one is linked.",
        )

    def handle(
        self,
        *args,
        name,
        dev_credentials,
        allowed_hosts=None,
        ops_url="",
        portal_user=None,
        notify_queues=None,
        **options,
    ):
        try:
            merchant = self._create(name, dev_credentials, allowed_hosts, ops_url, notify_queues)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if portal_user:
            write_member(self.stdout, merchant=merchant, username=portal_user, role="admin")

    def _create(self, name, dev_credentials, allowed_hosts, ops_url, notify_queues):
        if dev_credentials:
            if not settings.DEBUG:
                raise CommandError("--dev-credentials is refused unless DEBUG is on")
            existing = Merchant.objects.filter(
                api_key_prefix=settings.DEV_PAYMENTS_API_KEY[:16]
            ).first()
            if existing is not None:
                return existing
            credentials = merchant_create(
                name=name,
                api_key=settings.DEV_PAYMENTS_API_KEY,
                webhook_secret=settings.DEV_WEBHOOK_SECRET,
                allowed_hosts=allowed_hosts,
                notify_queues=notify_queues,
            )
        else:
            credentials = merchant_create(
                name=name,
                allowed_hosts=allowed_hosts,
                ops_url=ops_url,
                notify_queues=notify_queues,
            )
        self.stdout.write(f"app_id:         {credentials.merchant.app_id}")
        self.stdout.write(f"allowed hosts:  {', '.join(credentials.merchant.allowed_hosts)}")
        if credentials.merchant.notify_queues:
            queues = ", ".join(credentials.merchant.notify_queues)
            self.stdout.write(f"notify queues:  {queues}")
        self.stdout.write(f"api_key:        {credentials.api_key}")
        self.stdout.write(f"webhook_secret: {credentials.webhook_secret}")
        self.stdout.write("Store these now: the API key is kept only as a hash.")
        return credentials.merchant
