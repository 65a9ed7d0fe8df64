from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self):
        from core.search import staff_searcher_register

        from .selectors import recharge_orders_search

        # Orders first: the case staff act on.
        staff_searcher_register(search=recharge_orders_search, rank=0)
