from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from accounts.services import account_create


class Command(BaseCommand):
    help = (
        "Development only: the demo merchant (fake fixed credentials), user demo/demo with an "
        "account and superuser admin/admin. Idempotent."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo runs only with DEBUG on (development)")
        call_command("create_merchant", "Demo wallet", dev_credentials=True, stdout=self.stdout)
        users = get_user_model().objects
        if not users.filter(username="admin").exists():
            users.create_superuser("admin", "admin@example.com", "admin")
        demo = users.filter(username="demo").first() or users.create_user("demo", password="demo")
        if not Account.objects.filter(user=demo).exists():
            account_create(user=demo, currency=settings.ACCOUNTS_DEFAULT_CURRENCY)
