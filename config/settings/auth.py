"""Logging in: password rules, and django-axes's lockout after repeated failures."""

from datetime import timedelta

from .env import env

# Django's four validators (admin forms, createsuperuser, changepassword); the demo users'
# short passwords are set in code by seed_demo, in development only.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes counts failed log-ins, on /login/ and /admin/login/ alike, and locks out a
# username, and separately a client address, after AXES_FAILURE_LIMIT of them: guessing
# one user's password from many addresses, or many users' from one, both stop. The check
# runs before any password is hashed, so a locked-out attacker costs no PBKDF2 work either.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Every failure kept for staff (admin: Axes → access failures), not only the counts.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_USERNAME_CALLABLE = "core.auth.axes_username"
# The client address behind DJANGO_NUM_PROXIES trusted proxies, as the API throttles see it.
AXES_IPWARE_PROXY_COUNT = env.int("DJANGO_NUM_PROXIES", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
