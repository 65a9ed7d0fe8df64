"""``config.settings.production``: refuses to start on development values, and
``manage.py check --deploy`` is clean with it. Each case runs a fresh Python process, as a
deploy would, with DJANGO_SETTINGS_MODULE=config.settings.production."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "p" * 20 + "-a-long-random-production-secret-key-0123456789",
    "DJANGO_ALLOWED_HOSTS": "pay.example.com",
    "ACCOUNTS_PAYMENTS_API_KEY": "sk_live_from_a_secret_store",
    "ACCOUNTS_WEBHOOK_SECRETS": "whsec_cHJvZHVjdGlvbi13ZWJob29rLXNlY3JldA==",
    "DEPLOYMENT_NAMESPACE": "pay-production",
    "METRICS_TOKEN": "a-metrics-token-from-a-secret-store-0123",
}
PRINT_SETTINGS = (
    "from django.conf import settings; "
    "print(settings.DEBUG, settings.NOTIFY_ALLOWED_NETWORKS, "
    "settings.PAYMENTS_DEFAULT_ALLOWED_HOSTS, settings.SESSION_COOKIE_SECURE)"
)


def run(args, **env_changes):
    """Run ``python *args`` in the project with the production settings and ``env_changes``
    (a value of None removes the variable)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "NOTIFY_", "DEPLOYMENT_", "METRICS_"))
    }
    env.pop("ACCOUNTS_PAYMENTS_API_KEY", None)
    env.pop("ACCOUNTS_WEBHOOK_SECRETS", None)
    env.update(GOOD_ENV)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean():
    """``manage.py check --deploy --fail-level WARNING`` finds nothing with production
    settings and the required environment."""
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_defaults_are_closed():
    """DEBUG off, no private network reachable by notifications, no default merchant hosts,
    secure cookies."""
    result = run(["-c", PRINT_SETTINGS])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False [] [] True"


REFUSALS = {
    "no metrics token": ({"METRICS_TOKEN": None}, "METRICS_TOKEN is empty or shorter than 32"),
    "short metrics token": ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is empty or shorter"),
    "DEBUG on": ({"DJANGO_DEBUG": "1"}, "DEBUG is on"),
    "no secret key": ({"DJANGO_SECRET_KEY": None}, "Set the DJANGO_SECRET_KEY environment"),
    "no deployment namespace": (
        {"DEPLOYMENT_NAMESPACE": None},
        "Set the DEPLOYMENT_NAMESPACE environment",
    ),
    "development secret key": (
        {"DJANGO_SECRET_KEY": "django-insecure-dev-only-key-never-use-in-production"},
        "DJANGO_SECRET_KEY is the development key or too short",
    ),
    "short secret key": (
        {"DJANGO_SECRET_KEY": "short"},
        "DJANGO_SECRET_KEY is the development key or too short",
    ),
    "no allowed hosts": ({"DJANGO_ALLOWED_HOSTS": None}, "Set the DJANGO_ALLOWED_HOSTS"),
    "development API key": (
        {"ACCOUNTS_PAYMENTS_API_KEY": None},
        "ACCOUNTS_PAYMENTS_API_KEY is the development demo key",
    ),
    "development webhook secret": (
        {"ACCOUNTS_WEBHOOK_SECRETS": None},
        "ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret",
    ),
    "development webhook secret among others": (
        {
            "ACCOUNTS_WEBHOOK_SECRETS": GOOD_ENV["ACCOUNTS_WEBHOOK_SECRETS"]
            + ",whsec_ZGV2LW9ubHktZGVtby13ZWJob29rLXNlY3JldA=="
        },
        "ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret",
    ),
    "development webhook secret without its prefix": (
        {"ACCOUNTS_WEBHOOK_SECRETS": "ZGV2LW9ubHktZGVtby13ZWJob29rLXNlY3JldA=="},
        "ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret",
    ),
    "development webhook secret without its padding": (
        {"ACCOUNTS_WEBHOOK_SECRETS": "whsec_ZGV2LW9ubHktZGVtby13ZWJob29rLXNlY3JldA"},
        "ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret",
    ),
    "no webhook secret": (
        {"ACCOUNTS_WEBHOOK_SECRETS": ""},
        "ACCOUNTS_WEBHOOK_SECRETS is empty",
    ),
    "repetitive secret key": (
        {"DJANGO_SECRET_KEY": "a" * 50},
        "DJANGO_SECRET_KEY is the development key or too short or too repetitive",
    ),
    "any host": ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS contains '*'"),
    "create throttle off": (
        {"PAYMENTS_CREATE_THROTTLE_RATE": ""},
        "PAYMENTS_CREATE_THROTTLE_RATE is empty: the throttle would be off",
    ),
    "notify throttle off": (
        {"ACCOUNTS_NOTIFY_THROTTLE_RATE": ""},
        "ACCOUNTS_NOTIFY_THROTTLE_RATE is empty: the throttle would be off",
    ),
    "notify throttle not a rate": (
        {"ACCOUNTS_NOTIFY_THROTTLE_RATE": "lots"},
        "ACCOUNTS_NOTIFY_THROTTLE_RATE 'lots' is not a rate",
    ),
    "notify failure throttle off": (
        {"ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE": ""},
        "ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE is empty: the throttle would be off",
    ),
    "recharge rate off": (
        {"ACCOUNTS_RECHARGE_USER_RATE": ""},
        "ACCOUNTS_RECHARGE_USER_RATE is empty: the throttle would be off",
    ),
    "pending recharge cap 0": (
        {"ACCOUNTS_RECHARGE_PENDING_MAX": "0"},
        "ACCOUNTS_RECHARGE_PENDING_MAX is below 1",
    ),
    "allow-list: loopback": (
        {"NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8"},
        "NOTIFY_ALLOWED_NETWORKS: 127.0.0.0/8 opens 127.0.0.0, a loopback address",
    ),
    "allow-list: IPv6 loopback": ({"NOTIFY_ALLOWED_NETWORKS": "::1/128"}, "::1, a loopback"),
    "allow-list: private": ({"NOTIFY_ALLOWED_NETWORKS": "10.0.0.0/8"}, "10.0.0.0, a private"),
    "allow-list: metadata": (
        {"NOTIFY_ALLOWED_NETWORKS": "169.254.169.254/32"},
        "169.254.169.254, a cloud metadata address",
    ),
    "allow-list: everything": ({"NOTIFY_ALLOWED_NETWORKS": "0.0.0.0/0"}, "0.0.0.0/0 opens"),
    "allow-list: public range hiding 10/8": (
        {"NOTIFY_ALLOWED_NETWORKS": "8.0.0.0/6"},
        "8.0.0.0/6 overlaps 10.0.0.0/8, which is not public",
    ),
    "allow-list: 6to4 form of loopback": (
        {"NOTIFY_ALLOWED_NETWORKS": "2002:7f00:1::/48"},
        "2002:7f00:1::/48 opens 2002:7f00:1::, a loopback address",
    ),
    "allow-list: local-use NAT64": (
        {"NOTIFY_ALLOWED_NETWORKS": "64:ff9b:1::/48"},
        "64:ff9b:1::/48 opens 64:ff9b:1::, a reserved address",
    ),
    "allow-list: not a network": (
        {"NOTIFY_ALLOWED_NETWORKS": "intranet"},
        "NOTIFY_ALLOWED_NETWORKS: 'intranet' is not a network",
    ),
}


@pytest.mark.parametrize(("env", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_production_refuses_to_start_with_development_values(env, message):
    """DEBUG, a development, missing, short or repetitive secret key, the demo API key or
    webhook secret in any spelling, no webhook secret, any host, a throttle switched off, a
    pending-recharge cap below 1, or an SSRF allow-list opening an address the guard refuses:
    ImproperlyConfigured naming the problem."""
    result = run(["-c", PRINT_SETTINGS], **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_a_public_allow_list_is_accepted():
    """An allow-list naming only public networks is fine (e.g. a partner's range)."""
    result = run(["-c", PRINT_SETTINGS], NOTIFY_ALLOWED_NETWORKS="8.8.8.0/24")

    assert result.returncode == 0, result.stderr
    assert "['8.8.8.0/24']" in result.stdout
