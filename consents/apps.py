from django.apps import AppConfig


class ConsentsConfig(AppConfig):
    name = "consents"
    verbose_name = "Consent ledger"
    default_auto_field = "django.db.models.BigAutoField"
