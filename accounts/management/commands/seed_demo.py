from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from accounts.services import account_create


class Command(BaseCommand):
    help = (
        "Development only: the demo merchant (fake fixed credentials) and its portal's user "
        "shop/shop, user demo/demo with an account and superuser admin/admin; with --users N "
        "also demo1..demoN (password 'demo'), each with an account. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--users",
            type=int,
            default=0,
            metavar="N",
            help="Also create users demo1..demoN with password 'demo' and an account each.",
        )

    def handle(self, *args, users: int, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo runs only with DEBUG on (development)")
        if users < 0:
            raise CommandError("--users must be 0 or more")
        user_model = get_user_model().objects
        if not user_model.filter(username="shop").exists():
            user_model.create_user("shop", password="shop")
        call_command(
            "create_merchant",
            "Demo wallet",
            dev_credentials=True,
            portal_user="shop",
            # So the demo's accounts may be notified on the queue (ACCOUNTS_NOTIFY_TRANSPORT).
            notify_queues=[settings.ACCOUNTS_NOTIFY_QUEUE],
            stdout=self.stdout,
        )
        if not user_model.filter(username="admin").exists():
            user_model.create_superuser("admin", "admin@example.com", "admin")
        demo = user_model.filter(username="demo").first() or user_model.create_user(
            "demo", password="demo"
        )
        self._ensure_account(demo)
        # One hash for every extra user: they share the password anyway, and hashing it once
        # per user (PBKDF2, ~0.3 s each) would dominate seeding a few hundred of them.
        password = make_password("demo") if users else None
        for number in range(1, users + 1):
            user, _ = user_model.get_or_create(
                username=f"demo{number}", defaults={"password": password}
            )
            self._ensure_account(user)
        if users:
            self.stdout.write(f"users demo1..demo{users} (password 'demo') ready")

    def _ensure_account(self, user) -> None:
        if not Account.objects.filter(user=user).exists():
            account_create(user=user, currency=settings.ACCOUNTS_DEFAULT_CURRENCY)
