"""The staff admin of the ledger (docs/design.md): find a consent in any spelling, see its proof,
and fix it — every fix through the ledger with door ADMIN and the staff username as actor."""

import contextlib
import csv
import dataclasses
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from consents.addresses import normalize_email, normalize_phone
from consents.exceptions import ConsentError, InvalidAddress
from consents.exports import CSV_HEADER, consent_csv_row
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_delete,
    consent_update,
    consent_upsert,
)
from consents.links import consent_link
from consents.models import (
    ClientApiKey,
    ConfirmationSource,
    ConsentEvent,
    ConsentState,
    Door,
    MarketingConsent,
    OptInLevel,
    RevokeSource,
)
from privacy.admin import erase_person_action, export_person_action, receipt_link


def normalised_spellings(term: str) -> set[str]:
    """The stored spellings a search term may stand for: itself, as an email, as a phone."""
    spellings = {term.strip()}
    for normalize in (normalize_email, normalize_phone):
        with contextlib.suppress(InvalidAddress):
            spellings.add(normalize(term))
    return spellings


def admin_context(request: HttpRequest, reason: str) -> ChangeContext:
    context = ChangeContext.from_request(
        request, door=Door.ADMIN, actor=request.user.get_username()
    )
    return dataclasses.replace(context, note=reason)


class AddressSearchMixin:
    """Search also finds the address in its normalised spelling (`ANN@Example.com`,
    `(415) 555-0100`)."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            results |= queryset.filter(address__in=normalised_spellings(search_term))
        return results, may_have_duplicates


class ConsentChangeForm(forms.ModelForm):
    """A staff change of state: the activity that justifies it and a reason are required."""

    confirmation_source = forms.ChoiceField(
        choices=[("", "—"), *ConfirmationSource.choices], required=False
    )
    confirmation_opt_in_level = forms.ChoiceField(
        choices=OptInLevel.choices, initial=OptInLevel.SINGLE_CONFIRMATION, required=False
    )
    revoke_source = forms.ChoiceField(choices=[("", "—"), *RevokeSource.choices], required=False)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you make this change. Recorded as the activity's description and on the "
        "event.",
    )
    loaded_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = MarketingConsent
        fields = ["type", "address", "state"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_revision"].initial = self.instance.revision

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        state = data.get("state")
        if state in (ConsentState.PENDING, ConsentState.CONFIRMED) and not data.get(
            "confirmation_source"
        ):
            self.add_error("confirmation_source", f"Required to set the state {state}.")
        if state == ConsentState.REVOKED and not data.get("revoke_source"):
            self.add_error("revoke_source", "Required to set the state REVOKED.")
        return data

    def validate_unique(self) -> None:
        """An address that has a consent already is the ledger's to refuse (upsert updates)."""

    def to_change(self) -> ConsentChange:
        data = self.cleaned_data
        reason = data["reason"]
        confirmation = (
            ConfirmationActivity(
                source=data["confirmation_source"],
                description=reason,
                opt_in_level=data["confirmation_opt_in_level"] or OptInLevel.SINGLE_CONFIRMATION,
            )
            if data.get("confirmation_source")
            else None
        )
        revoke = (
            RevokeActivity(source=data["revoke_source"], description=reason)
            if data.get("revoke_source")
            else None
        )
        return ConsentChange(state=data["state"], confirmation=confirmation, revoke=revoke)


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    fk_name = "consent"
    ordering = ["-recorded_at", "-id"]
    fields = [
        "recorded_at",
        "kind",
        "revision",
        "previous_state",
        "state",
        "activity_source",
        "activity_description",
        "door",
        "actor",
        "note",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RevokeReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded on every revocation (e.g. the complaint's reference).",
    )


@admin.register(MarketingConsent)
class MarketingConsentAdmin(AddressSearchMixin, admin.ModelAdmin):
    form = ConsentChangeForm
    list_display = [
        "address",
        "type",
        "state",
        "revision",
        "confirmation_source",
        "revoke_source",
        "confirmation_opt_in_level",
        "updated_date",
    ]
    list_filter = [
        "type",
        "state",
        "confirmation_source",
        "revoke_source",
        "confirmation_opt_in_level",
        ("updated_date", admin.DateFieldListFilter),
        ("created_date", admin.DateFieldListFilter),
        ("confirmation_date", admin.DateFieldListFilter),
        ("revoke_date", admin.DateFieldListFilter),
    ]
    search_fields = ["address"]
    search_help_text = "Email or phone, in any spelling."
    date_hierarchy = "updated_date"
    list_per_page = 50
    inlines = [ConsentEventInline]
    actions = ["revoke_selected", "export_selected_csv", export_person_action, erase_person_action]
    readonly_fields = [
        "receipt",
        "revision",
        "current_link",
        "current_confirmation",
        "current_revoke",
        "extended_fields",
        "created_date",
        "updated_date",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        if obj is None:
            return [
                (None, {"fields": ["type", "address", "state", "reason"]}),
                ("Confirmation activity", {"fields": self._confirmation_fields}),
                ("Revoke activity", {"fields": ["revoke_source"]}),
            ]
        current = ["type", "address", "revision", "current_link", "current_confirmation"]
        current += ["current_revoke", "extended_fields", "created_date", "updated_date"]
        current += ["receipt"]
        if not self.has_change_permission(request, obj):
            return [(None, {"fields": current})]
        return [
            ("Current consent", {"fields": current}),
            (
                "Change state",
                {
                    "fields": ["state", "reason", "loaded_revision"],
                    "description": "Saving records the change through the ledger, with your "
                    "username and the reason, like any API write.",
                },
            ),
            (
                "Confirmation activity (for PENDING or CONFIRMED)",
                {"fields": self._confirmation_fields},
            ),
            ("Revoke activity (for REVOKED)", {"fields": ["revoke_source"]}),
        ]

    _confirmation_fields = ["confirmation_source", "confirmation_opt_in_level"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["type", "address"]  # an address's consent stays that address's
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[MarketingConsent]:
        # Erased addresses' tombstones are left out: the erasure records stand for them.
        return super().get_queryset(request).not_erased()

    @admin.display(description="Receipt")
    def receipt(self, consent: MarketingConsent) -> str:
        return receipt_link(consent)

    @admin.display(description="Current link")
    def current_link(self, consent: MarketingConsent) -> str:
        link = consent_link(consent)
        if link is None:
            return "—"
        return format_html('{}: <a href="{}">{}</a>', link["type"], link["url"], "open")

    @admin.display(description="Last confirmation")
    def current_confirmation(self, consent: MarketingConsent) -> str:
        if consent.confirmation_date is None:
            return "—"
        when = f"{consent.confirmation_date:%Y-%m-%d %H:%M:%S} UTC"
        return (
            f"{consent.confirmation_source}, {consent.confirmation_opt_in_level}, {when} — "
            f"{consent.confirmation_description}"
        )

    @admin.display(description="Last revoke")
    def current_revoke(self, consent: MarketingConsent) -> str:
        if consent.revoke_date is None:
            return "—"
        return (
            f"{consent.revoke_source}, {consent.revoke_date:%Y-%m-%d %H:%M:%S} UTC — "
            f"{consent.revoke_description}"
        )

    def save_model(
        self, request: HttpRequest, obj: Any, form: ConsentChangeForm, change: bool
    ) -> None:
        """Never saves the row: the ledger does, and writes the event."""
        context = admin_context(request, form.cleaned_data["reason"])
        if change:
            result = consent_update(
                consent_id=obj.pk,
                change=form.to_change(),
                expected_revision=form.cleaned_data.get("loaded_revision"),
                context=context,
            )
        else:
            result = consent_upsert(
                type=form.cleaned_data["type"],
                address=form.cleaned_data["address"],
                change=form.to_change(),
                context=context,
            )
        obj.pk = result.consent.pk
        obj.refresh_from_db()

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ConsentError as refused:
            # E.g. someone else changed it meanwhile (revision), or an address the ledger refuses.
            self.message_user(request, f"Nothing was changed: {refused.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: MarketingConsent) -> None:
        consent_delete(consent_id=obj.pk, context=admin_context(request, "Deleted in the admin."))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for consent in queryset.order_by("type", "address"):
            self.delete_model(request, consent)

    @admin.action(description="Revoke selected consents", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = RevokeReasonForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/consents/marketingconsent/revoke_selected.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Revoke the selected consents",
                    "opts": self.model._meta,
                    "consents": queryset,
                    "form": form,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        context = admin_context(request, form.cleaned_data["reason"])
        revoked = already = 0
        for consent in queryset.order_by("type", "address"):
            if consent.state == ConsentState.REVOKED:
                already += 1  # its revoke activity is the proof that matters: left as it is
                continue
            consent_update(
                consent_id=consent.pk,
                change=ConsentChange(
                    state=ConsentState.REVOKED,
                    revoke=RevokeActivity(
                        source=RevokeSource.OTHER, description=form.cleaned_data["reason"]
                    ),
                ),
                context=context,
            )
            revoked += 1
        self.message_user(request, f"Revoked {revoked} consent(s); {already} were already revoked.")
        return None

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_selected_csv(
        self, request: HttpRequest, queryset: QuerySet
    ) -> StreamingHttpResponse:
        response = StreamingHttpResponse(
            csv_lines(queryset.order_by("id")), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="consents.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(queryset: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for consent in queryset.iterator(chunk_size=2000):
        yield writer.writerow(consent_csv_row(consent))


@admin.register(ConsentEvent)
class ConsentEventAdmin(AddressSearchMixin, admin.ModelAdmin):
    """The proof: read-only for everyone, superusers included."""

    list_display = ["recorded_at", "address", "kind", "state", "revision", "door", "actor"]
    list_filter = ["door", "kind", "state", ("recorded_at", admin.DateFieldListFilter)]
    search_fields = ["address", "actor"]
    search_help_text = "Address (any spelling) or actor."
    date_hierarchy = "recorded_at"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Our keys are ClientApiKey (with scope and API); the library's own model stays unused.
admin.site.unregister(APIKey)


@admin.register(ClientApiKey)
class ClientApiKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "scope", "api"]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope", "api"]
