"""Every notification made before endpoints existed gets its endpoint: the sender plus the
origin of its URL. Batches of rows by primary key, so the cost is linear in the table."""

from urllib.parse import urlsplit

from django.db import migrations

BATCH = 2000


def _origin(url: str) -> str:
    # notifications.endpoints.origin_of as of this migration (kept here: code may change).
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{scheme}://{host}:{parts.port or (443 if scheme == 'https' else 80)}"


def fill_endpoints(apps, schema_editor):
    Endpoint = apps.get_model("notifications", "Endpoint")
    Notification = apps.get_model("notifications", "Notification")
    endpoint_ids = {}  # (sender_key, origin) → id
    rows = Notification.objects.filter(endpoint=None).order_by("pk")
    while batch := list(rows.values_list("pk", "sender_key", "target_url")[:BATCH]):
        by_endpoint = {}
        for pk, sender_key, target_url in batch:
            key = (sender_key, _origin(target_url))
            if key not in endpoint_ids:
                endpoint_ids[key] = Endpoint.objects.get_or_create(
                    sender_key=key[0], origin=key[1]
                )[0].pk
            by_endpoint.setdefault(endpoint_ids[key], []).append(pk)
        for endpoint_id, pks in by_endpoint.items():
            Notification.objects.filter(pk__in=pks).update(endpoint_id=endpoint_id)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_endpoints")]

    operations = [migrations.RunPython(fill_endpoints, migrations.RunPython.noop)]
