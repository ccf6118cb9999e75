"""Staff views of the ledger. Consents and events are read-only here: writes go through the
ledger (the full staff admin with ledger-backed edits is built on top of this)."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from consents.models import ClientApiKey, ConsentEvent, MarketingConsent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MarketingConsent)
class MarketingConsentAdmin(ReadOnlyAdmin):
    list_display = ["address", "type", "state", "revision", "updated_date"]
    list_filter = ["type", "state"]
    search_fields = ["address"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["recorded_at", "address", "kind", "state", "revision", "door", "actor"]
    list_filter = ["door", "kind", "state"]
    search_fields = ["address", "actor"]


@admin.register(ClientApiKey)
class ClientApiKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "scope", "api"]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope", "api"]
