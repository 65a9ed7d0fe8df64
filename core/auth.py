"""Log-in helpers django-axes is configured with (config/settings/auth.py)."""

# Django's username column; axes stores what it is given in a column of 255 characters.
USERNAME_MAX_LENGTH = 150


def axes_username(request, credentials: dict | None) -> str:
    """The username a log-in attempt names, cut to what a username can be: a 10,000-character
    one (a hostile form post) is still counted as a failure for that prefix instead of
    failing the page with a database error."""
    value = (credentials or {}).get("username") or request.POST.get("username", "")
    return str(value)[:USERNAME_MAX_LENGTH]
