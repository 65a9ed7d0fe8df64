from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications (outbox)"

    def ready(self):
        from core.search import staff_searcher_register

        from .selectors import notifications_search

        staff_searcher_register(search=notifications_search, rank=10)
