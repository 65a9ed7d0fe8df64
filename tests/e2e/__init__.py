"""End-to-end tests: the real stack (gunicorn, Celery worker and beat, Redis) over loopback."""
