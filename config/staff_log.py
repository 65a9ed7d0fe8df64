"""A record of who did what in the admin: staff actions go to Django's admin log (LogEntry,
shown in each object's History and on the admin index) and to the ``staff`` logger."""

import logging

logger = logging.getLogger("staff")


def staff_action_log(*, modeladmin, request, obj, message: str) -> None:
    """Record that ``request.user`` did ``message`` to ``obj`` from ``modeladmin``."""
    modeladmin.log_change(request, obj, message)
    logger.info(
        "staff action by %s on %s %s: %s",
        request.user.get_username(),
        obj._meta.label,
        obj.pk,
        message,
    )
