from django.apps import AppConfig


class ConsentsConfig(AppConfig):
    name = "consents"
    verbose_name = "Consent ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consents.ledger import changes_recorded
        from consents.revocations import admin as jobs_admin  # noqa: F401 - registers it
        from consents.webhooks import admin  # noqa: F401 - registers the webhook admin
        from consents.webhooks.wake import on_changes_recorded

        changes_recorded.connect(on_changes_recorded, dispatch_uid="webhooks-wake")
