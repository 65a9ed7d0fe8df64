"""DRF authentication for the merchant API: ``Authorization: Bearer <api key>``."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .selectors import merchant_for_api_key


class MerchantApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a merchant by API key; ``request.user`` is the ``Merchant``."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, api_key = header.partition(" ")
        if keyword != self.keyword or not api_key or len(api_key) > 128:
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
        merchant = merchant_for_api_key(api_key=api_key.strip())
        if merchant is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return merchant, api_key

    def authenticate_header(self, request):
        return self.keyword


class MerchantApiKeyScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the merchant API's ``Authorization: Bearer <api key>`` security scheme."""

    target_class = MerchantApiKeyAuthentication
    name = "merchantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The merchant's API key (sk_...), printed once by create_merchant.",
        }
