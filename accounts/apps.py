from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from core.search import staff_searcher_register

        from .selectors import account_records_search

        staff_searcher_register(search=account_records_search, rank=20)
