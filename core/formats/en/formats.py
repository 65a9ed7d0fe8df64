"""English date formats: a moment is shown to the second with its zone, one format wherever a
page leaves the format to Django (the admin's lists and pages): 2026-11-27 14:03:22 UTC."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
