"""Settings shared by every environment, read from the environment with development defaults.

Core Django here; each other concern in a module of its own, imported at the end: the
database, Redis (broker, cache, the deployment's namespace), the HTTP APIs, Celery, and each
app's knobs. Every value can be overridden by an environment variable of the same name (see
README "Configuration"). Development defaults that look like secrets are deliberately fake and
``config.settings.production`` refuses them.
"""

from .env import VAR_DIR, env

# --- Core -----------------------------------------------------------------------------------
DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "core",  # before the admin: its admin/base_site.html (banners) is found first
    "core.admin_site.ProjectAdminConfig",  # django.contrib.admin, lookups restricted
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "notifications",
    "payments",
    "accounts",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the request: a path of the other surface is a 404 here.
    "core.middleware.SurfaceMiddleware",
    "core.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it answers a locked-out log-in before the view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Moments to the second with their zone wherever Django formats them (core/formats/).
FORMAT_MODULE_PATH = ["core.formats"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "login"

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Whitenoise serves the admin's assets from gunicorn; in development straight from the apps.
WHITENOISE_USE_FINDERS = DEBUG

# --- Admin ----------------------------------------------------------------------------------
# Callables returning lines shown as errors at the top of every admin page.
ADMIN_BANNERS = ["notifications.alerts.endpoint_banners"]
# An order pending longer than this is "stuck" in the admin's filters.
# Past the order TTL plus an expiry tick, a pending order means expiry itself is not running.
STUCK_AFTER = env.float("STUCK_AFTER", default=45 * 60)  # seconds

# Who mail_admins writes to (an endpoint disabled, say): "ops@example.com,oncall@example.com".
ADMINS = [(email, email) for email in env.list("DJANGO_ADMINS", default=[])]
SERVER_EMAIL = env("DJANGO_SERVER_EMAIL", default="recharge-notify@localhost")
# How mail goes out (django-environ's EMAIL_URL, e.g. smtp+tls://user:pass@host:587);
# development prints it on the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
# Seconds an email server may take: an alert must never hang the task that sends it.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10)

# Celery's routine lines (the sweeper every 2 s: core/logfilters.py) are at DEBUG unless this
# is on: work done, warnings and errors print either way. The chaos harness turns it on, as
# its figures count the lines.
LOG_ROUTINE = env.bool("LOG_ROUTINE", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"routine": {"()": "core.logfilters.RoutineFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": [] if LOG_ROUTINE else ["routine"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- Each concern ---------------------------------------------------------------------------
from .accounts import *  # noqa: E402, F403
from .api import *  # noqa: E402, F403
from .auth import *  # noqa: E402, F403
from .celery import *  # noqa: E402, F403
from .database import *  # noqa: E402, F403
from .metrics import *  # noqa: E402, F403
from .notifications import *  # noqa: E402, F403
from .payments import *  # noqa: E402, F403
from .redis import *  # noqa: E402, F403
