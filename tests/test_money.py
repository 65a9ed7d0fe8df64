"""Money as integer minor units (config/money.py): display, parsing, the API field."""

import pytest
from rest_framework import serializers

from core.money import MinorUnitsField, format_minor, minor_exponent, parse_major


@pytest.mark.parametrize(
    ("currency", "exponent"), [("CNY", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3)]
)
def test_minor_exponent_follows_iso_4217(currency, exponent):
    """Digits after the decimal point: 2 unless the currency is listed otherwise."""
    assert minor_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1234, "CNY", "12.34 CNY"),
        (5, "CNY", "0.05 CNY"),
        (100, "USD", "1.00 USD"),
        (0, "EUR", "0.00 EUR"),
        (100_000_000, "CNY", "1000000.00 CNY"),
        (-1234, "CNY", "-12.34 CNY"),
        (-5, "CNY", "-0.05 CNY"),
        (1234, "JPY", "1234 JPY"),
        (1234, "BHD", "1.234 BHD"),
        (7, "KWD", "0.007 KWD"),
    ],
)
def test_format_minor(amount, currency, text):
    """Minor units shown as major units with the currency's number of decimals."""
    assert format_minor(amount, currency) == text


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("12.34", "CNY", 1234),
        ("12", "CNY", 1200),
        ("12.3", "CNY", 1230),
        ("0.01", "CNY", 1),
        ("0", "CNY", 0),
        ("007", "USD", 700),
        (" 7.50 ", "USD", 750),
        ("1234", "JPY", 1234),
        ("1.234", "BHD", 1234),
        ("999999999999999.99", "CNY", 99_999_999_999_999_999),
    ],
)
def test_parse_major(text, currency, amount):
    """A plain decimal as a person types it becomes exact integer minor units."""
    assert parse_major(text, currency) == amount


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("abc", "CNY"),
        ("", "CNY"),
        ("1.234", "CNY"),
        ("12.", "CNY"),
        (".5", "CNY"),
        ("-1", "CNY"),
        ("+1", "CNY"),
        ("1e3", "CNY"),
        ("1,000", "CNY"),
        ("1 000", "CNY"),
        ("12.3.4", "CNY"),
        ("1.0", "JPY"),
        ("1.2345", "BHD"),
        ("1" * 16, "CNY"),
        ("NaN", "CNY"),
        ("Infinity", "CNY"),
    ],
)
def test_parse_major_refuses_anything_else(text, currency):
    """Signs, exponents, separators, too many decimals or digits: ValueError."""
    with pytest.raises(ValueError, match="enter an amount"):
        parse_major(text, currency)


def test_format_and_parse_round_trip():
    """Formatting then parsing returns the same minor units."""
    for amount in (0, 1, 99, 100, 1234, 100_000_000):
        text, _currency = format_minor(amount, "CNY").split(" ")
        assert parse_major(text, "CNY") == amount


class AmountSerializer(serializers.Serializer):
    amount = MinorUnitsField(min_value=1, max_value=10_000)


def amount_errors(value):
    serializer = AmountSerializer(data={"amount": value})
    assert not serializer.is_valid()
    return [str(error) for error in serializer.errors["amount"]]


def test_minor_units_field_accepts_a_json_integer():
    """An int passes through unchanged."""
    serializer = AmountSerializer(data={"amount": 1234})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["amount"] == 1234
    assert type(serializer.validated_data["amount"]) is int


@pytest.mark.parametrize("value", [100.0, 100.5, "100", "1e2", True, False, [100], {"v": 1}])
def test_minor_units_field_refuses_anything_but_an_integer(value):
    """Floats (even whole ones), strings, booleans and containers are refused, where DRF's
    IntegerField would have accepted "100", 100.0 and True."""
    assert amount_errors(value) == ["Must be a JSON integer count of minor units."]


def test_minor_units_field_keeps_its_limits():
    """min_value and max_value still apply."""
    assert amount_errors(0) == ["Ensure this value is greater than or equal to 1."]
    assert amount_errors(10_001) == ["Ensure this value is less than or equal to 10000."]


def test_minor_units_field_refuses_null_and_absence():
    """null and a missing amount are refused like any required field."""
    assert amount_errors(None) == ["This field may not be null."]
    serializer = AmountSerializer(data={})
    assert not serializer.is_valid()
    assert serializer.errors["amount"] == ["This field is required."]
