"""The admin's changelists accept only the URL lookups their own filters write (issue 11,
item 1): a staff user who may only view merchants recovered a webhook secret by binary
search over ``?webhook_secret__gte=...``, answered "1 merchant" or "0 merchants".

Every ModelAdmin registered on the site gets the restriction (core/admin_site.py), so the
checks run over every model with a secret or a hash, and over every changelist's own filter
links, which must keep working."""

import re
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import InboundNotification
from core.admin import FilterLookupsOnlyMixin
from payments.models import Merchant

# Every model field holding a secret, a password hash or part of one, by admin URL name.
SECRET_FIELDS = {
    "payments_merchant": [
        "webhook_secret",
        "previous_webhook_secret",
        "api_key_hash",
        "api_key_prefix",
    ],
    "auth_user": ["password"],
    "accounts_inboundnotification": ["payload_sha256"],
}
# Lookups an oracle attack would use; each on its own, and through a relation.
LOOKUPS = ["", "__exact", "__gte", "__lt", "__startswith", "__regex", "__contains", "__in"]


@pytest.fixture
def viewer(client, db, fast_password_hashing):
    """A staff user with only the view permission on merchants, users and receipts."""
    user = get_user_model().objects.create_user("viewer", password="viewer-pw", is_staff=True)
    for codename in ("view_merchant", "view_user", "view_inboundnotification"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("url_name", "field", "lookup"),
    [
        (url, field, lookup)
        for url, fields in SECRET_FIELDS.items()
        for field in fields
        for lookup in LOOKUPS
    ],
)
def test_no_lookup_on_a_secret_is_answered(client, viewer, merchant, url_name, field, lookup):
    """Any lookup on a secret or hash field is refused with a 400 before any query: the
    page shows no count, so the answer is the same whatever the secret is."""
    InboundNotification.objects.create(webhook_id="msg_x", payload_sha256="ab" * 32)
    url = reverse(f"admin:{url_name}_changelist")
    probes = ["whsec_", "z", "pbkdf2", "a"]  # whatever the value, the same refusal

    responses = [client.get(url, {f"{field}{lookup}": probe}) for probe in probes]

    assert {response.status_code for response in responses} == {400}
    assert not any(b"result" in r.content or b"merchant" in r.content for r in responses)


def test_secret_lookups_through_a_relation_are_refused(admin_client, db):
    """A lookup that walks a relation into a secret (the ledger's account's user's password)
    is refused too, even for a superuser."""
    url = reverse("admin:accounts_ledgerentry_changelist")

    response = admin_client.get(url, {"account__user__password__startswith": "pbkdf2"})

    assert response.status_code == 400


def test_the_binary_search_of_the_report_gets_no_signal(client, viewer, merchant):
    """The attack as reported: a secret's prefix below and above the real one gives the
    same answer, so nothing about the secret can be learned."""
    url = reverse("admin:payments_merchant_changelist")
    secret = Merchant.objects.get(pk=merchant.pk).webhook_secret

    below = client.get(url, {"app_id": merchant.app_id, "webhook_secret__gte": "whsec_"})
    above = client.get(url, {"app_id": merchant.app_id, "webhook_secret__gte": secret + "~"})

    assert (below.status_code, above.status_code) == (400, 400)
    assert below.content == above.content


def test_every_registered_admin_has_the_restriction():
    """The project's admins and the third-party ones (auth, django-celery-beat)."""
    registered = admin.site._registry.values()

    assert registered
    assert all(isinstance(model_admin, FilterLookupsOnlyMixin) for model_admin in registered)


@pytest.mark.parametrize(
    "model_admin",
    list(admin.site._registry.values()),
    ids=lambda model_admin: model_admin.opts.label,
)
def test_every_changelists_own_filters_still_work(admin_client, merchant, model_admin):
    """Every filter link a changelist shows opens (200, not the 400 of a refused lookup)."""
    url = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    sidebar = page.content.decode().partition('id="changelist-filter"')[2]
    links = {unescape(href) for href in re.findall(r'href="(\?[^"]+)"', sidebar)}

    statuses = {link: admin_client.get(url + link).status_code for link in links}

    assert set(statuses.values()) <= {200}, statuses


def test_no_changelist_search_reaches_a_secret():
    """``?q=`` searches only identifier fields: no registered admin's ``search_fields`` names
    a secret or hash field, directly or through a relation (the Find page and the links
    between the apps' pages rely on ``?q=``)."""
    secrets = {field for fields in SECRET_FIELDS.values() for field in fields}

    searched = [
        (model_admin.opts.label, field)
        for model_admin in admin.site._registry.values()
        for field in model_admin.search_fields or ()
    ]

    assert searched  # the check is over something
    assert not [(label, f) for label, f in searched if set(f.lstrip("=^@").split("__")) & secrets]
