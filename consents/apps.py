from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsentsConfig(AppConfig):
    name = "consents"
    verbose_name = "Consent ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consents.ledger import changes_recorded
        from consents.ledger.postgres import reinstall_merge_function_if_changed
        from consents.revocations import admin as jobs_admin  # noqa: F401 - registers it
        from consents.webhooks import admin  # noqa: F401 - registers the webhook admin
        from consents.webhooks.wake import on_changes_recorded

        changes_recorded.connect(on_changes_recorded, dispatch_uid="webhooks-wake")
        post_migrate.connect(
            reinstall_merge_function_if_changed, sender=self, dispatch_uid="consent-merge"
        )
