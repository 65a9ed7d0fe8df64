"""Filters of the merchant portal's templates."""

from django import template

from core.money import format_minor

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    """``{{ order.amount|money:order.currency }}``: minor units as ``12.34 CNY``."""
    return format_minor(amount, currency)


@register.filter
def percent(share: float | None) -> str:
    """``0.987`` → ``98.7%``; None (nothing measured yet) → ``—``."""
    return "—" if share is None else f"{share:.1%}"
