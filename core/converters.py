"""URL path converters shared by the apps' URLconfs (registered once, on import)."""

from django.urls import register_converter


class TokenConverter:
    """An identifier in a URL (tx_no, out_trade_no): 1-64 letters, digits, '_' or '-'.

    Anything else (too long, NUL bytes, punctuation) never reaches a view or the database:
    the URL simply does not match, a 404.
    """

    regex = r"[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TokenConverter, "token")
