"""Money as integer minor units: display and parsing shared by both apps. No floats anywhere."""

import re

from rest_framework import serializers

# ISO 4217 minor-unit exponents for the currencies that differ from the usual 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
_MAJOR = re.compile(r"^\s*(\d{1,15})(?:\.(\d+))?\s*$")


def minor_exponent(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 unless listed)."""
    return _EXPONENTS.get(currency, 2)


def format_minor(amount: int, currency: str) -> str:
    """``1234, "CNY"`` → ``"12.34 CNY"``; ``1234, "JPY"`` → ``"1234 JPY"``."""
    exponent = minor_exponent(currency)
    if exponent == 0:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{major}.{minor:0{exponent}d} {currency}"


def parse_major(text: str, currency: str) -> int:
    """``"12.34", "CNY"`` → ``1234`` minor units. Raises ``ValueError`` for anything that is
    not a plain non-negative decimal with at most the currency's number of decimals."""
    match = _MAJOR.match(text)
    exponent = minor_exponent(currency)
    if not match or len(match.group(2) or "") > exponent:
        raise ValueError(f"enter an amount like 12.34 (at most {exponent} decimals)")
    fraction = (match.group(2) or "").ljust(exponent, "0")
    return int(match.group(1)) * 10**exponent + int(fraction or 0)


class MinorUnitsField(serializers.IntegerField):
    """A DRF field for an amount in minor units: a JSON integer, never a string, float or
    boolean (DRF's IntegerField would accept ``"100"`` and ``100.0``)."""

    default_error_messages = {"not_int": "Must be a JSON integer count of minor units."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("not_int")
        return super().to_internal_value(data)
