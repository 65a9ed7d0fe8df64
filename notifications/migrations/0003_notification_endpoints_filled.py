"""Every notification made before endpoints existed gets its endpoint (sender + the origin of
its URL), then the column becomes required."""

from urllib.parse import urlsplit

import django.db.models.deletion
from django.db import migrations, models


def _origin(url: str) -> str:
    # notifications.services.origin_of as of this migration (kept here: code may change).
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{scheme}://{host}:{parts.port or (443 if scheme == 'https' else 80)}"


def fill_endpoints(apps, schema_editor):
    Endpoint = apps.get_model("notifications", "Endpoint")
    Notification = apps.get_model("notifications", "Notification")
    pairs = Notification.objects.filter(endpoint=None).values_list("sender_key", "target_url")
    for sender_key, target_url in pairs.distinct().iterator():
        endpoint, _ = Endpoint.objects.get_or_create(
            sender_key=sender_key, origin=_origin(target_url)
        )
        Notification.objects.filter(
            endpoint=None, sender_key=sender_key, target_url=target_url
        ).update(endpoint=endpoint)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_endpoints")]

    operations = [
        migrations.RunPython(fill_endpoints, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="notification",
            name="endpoint",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notifications",
                to="notifications.endpoint",
            ),
        ),
    ]
