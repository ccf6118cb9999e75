"""The staff admin of the ledger (docs/design.md): find a consent in any spelling, see its proof,
and fix it — every fix through the ledger with door ADMIN and the staff username as actor."""

import contextlib
import csv
import dataclasses
import logging
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from consents.addresses import normalize_email, normalize_phone
from consents.exceptions import (
    ConsentAlreadyExists,
    ConsentError,
    InvalidAddress,
    InvalidChange,
    RevisionMismatch,
)
from consents.exports import CSV_HEADER, consent_csv_row
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_add,
    consent_delete,
    consent_update,
)
from consents.links import CONFIRM, consent_link
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
from consents.privacy.admin import erase_person_action, export_person_action, receipt_link
from consents.revocations.jobs import run_revoke_job, start_revoke_job
from consents.revocations.tasks import run_revoke_job as revoke_job_task
from consentsite.change_context import change_context
from consentsite.read_only_admin import ReadOnlyAdmin

logger = logging.getLogger(__name__)


def normalised_spellings(term: str) -> set[str]:
    """The stored spellings a search term may stand for: itself, as an email, as a phone."""
    spellings = {term.strip()}
    for normalize in (normalize_email, normalize_phone):
        with contextlib.suppress(InvalidAddress):
            spellings.add(normalize(term))
    return spellings


def admin_context(request: HttpRequest, reason: str) -> ChangeContext:
    context = change_context(request, door=Door.ADMIN, actor=request.user.get_username())
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


def shown_date(value: Any) -> str:
    """A date as every admin page shows it (seconds and time zone, see consentsite/formats)."""
    return display_for_value(value, "—")


# Where a ledger refusal's field (in the consent API's spelling) shows on the admin form.
_FORM_FIELD_OF = {
    "state": "state",
    "lastConfirmationActivity": "confirmation_source",
    "lastRevokeActivity": "revoke_source",
}


class ConsentChangeForm(forms.ModelForm):
    """A staff change of state: the activity that justifies it and a reason are required.

    The form only reads what staff typed; the ledger writes. So the instance is never touched:
    an invalid post leaves every fact on the page (heading, link, dates) as stored."""

    confirmation_source = forms.ChoiceField(
        label="Source", choices=[("", "—"), *ConfirmationSource.choices], required=False
    )
    confirmation_opt_in_level = forms.ChoiceField(
        label="Opt-in level",
        choices=OptInLevel.choices,
        initial=OptInLevel.SINGLE_CONFIRMATION,
        required=False,
    )
    revoke_source = forms.ChoiceField(
        label="Source", choices=[("", "—"), *RevokeSource.choices], required=False
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you make this change. Recorded as the activity's description and on the "
        "event.",
    )
    loaded_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    # Set by the admin when the ledger refused this very post: shown as the form's errors.
    ledger_refusal: ConsentError | None = None

    class Meta:
        model = MarketingConsent
        fields = ["type", "address", "state"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_revision"].initial = self.instance.revision

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            self.to_change().require_activities()
        except InvalidChange as refused:
            label = ConsentState(data["state"]).label
            self.add_error(_FORM_FIELD_OF[refused.field], f"Required to set the state {label}.")
        if self.ledger_refusal is not None:
            self.add_error(*self._refusal_error(self.ledger_refusal))
        return data

    def _refusal_error(self, refused: ConsentError) -> tuple[str | None, str]:
        """The ledger's refusal as a form error: on the field it names, if the form has it."""
        message = f"Nothing was changed: {refused.message}"
        field = None
        if isinstance(refused, ConsentAlreadyExists):
            url = reverse("admin:consents_marketingconsent_change", args=[refused.consent_id])
            message = format_html(
                '{} <a href="{}">Open that consent</a> to change it there, with a reason.',
                refused.message,
                url,
            )
            field = "address"
        elif isinstance(refused, InvalidAddress):
            field = "address"
        elif isinstance(refused, InvalidChange):
            field = _FORM_FIELD_OF.get(refused.field.split(".")[0])
        elif isinstance(refused, RevisionMismatch):
            message += " Someone changed it meanwhile: reload this page to see that change."
        return (field if field in self.fields else None), message

    def _post_clean(self) -> None:
        """Leaves the instance as stored (Django's ModelForm copies the post onto it); type,
        address and state are validated by their form fields here and by the ledger."""

    def to_change(self) -> ConsentChange:
        data = self.cleaned_data
        reason = data.get("reason", "")
        confirmation = (
            ConfirmationActivity(
                source=data["confirmation_source"],
                description=reason,
                opt_in_level=data.get("confirmation_opt_in_level")
                or OptInLevel.SINGLE_CONFIRMATION,
            )
            if data.get("confirmation_source")
            else None
        )
        revoke = (
            RevokeActivity(source=data["revoke_source"], description=reason)
            if data.get("revoke_source")
            else None
        )
        return ConsentChange(state=data.get("state"), confirmation=confirmation, revoke=revoke)


# An event's activity source is a confirmation's or a revoke's: one word for each value.
ACTIVITY_SOURCE_LABELS = {**dict(RevokeSource.choices), **dict(ConfirmationSource.choices)}


def activity_source_label(event: ConsentEvent) -> str:
    return ACTIVITY_SOURCE_LABELS.get(event.activity_source, event.activity_source) or "—"


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
        "activity",
        "activity_description",
        "door",
        "actor",
        "note",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="Activity source")
    def activity(self, event: ConsentEvent) -> str:
        return activity_source_label(event)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RevokeReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded on every revocation (e.g. the complaint's reference).",
    )


# How many of the selected consents the revoke confirmation lists: it shows the count and a
# sample, never one line per row (a selection may be every consent).
REVOKE_SAMPLE_SIZE = 20


@admin.register(MarketingConsent)
class MarketingConsentAdmin(AddressSearchMixin, admin.ModelAdmin):
    form = ConsentChangeForm
    list_display = ["address", "type", "state", "revision", "updated_date"]
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
    ordering = ["-updated_date"]
    search_fields = ["address"]
    search_help_text = "Email or phone, in any spelling."
    date_hierarchy = "updated_date"
    list_per_page = 50
    inlines = [ConsentEventInline]
    actions = ["revoke_selected", "export_selected_csv", export_person_action, erase_person_action]
    readonly_fields = [
        "state_now",
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
                (
                    None,
                    {
                        "fields": ["type", "address", "state", "reason"],
                        "description": "Records a new address's consent through the ledger. An "
                        "address that has a consent already is changed on its own page.",
                    },
                ),
                ("Confirmation activity", {"fields": self._confirmation_fields}),
                ("Revoke activity", {"fields": ["revoke_source"]}),
            ]
        current = ["type", "address", "state_now", "revision", "current_link"]
        current += ["current_confirmation", "current_revoke", "extended_fields"]
        current += ["created_date", "updated_date", "receipt"]
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
                "Confirmation activity (for Pending or Confirmed)",
                {"fields": self._confirmation_fields},
            ),
            ("Revoke activity (for Revoked)", {"fields": ["revoke_source"]}),
        ]

    _confirmation_fields = ["confirmation_source", "confirmation_opt_in_level"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["type", "address"]  # an address's consent stays that address's
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "ledger_refusal", None)
        if refusal is None:
            return form
        return type(form.__name__, (form,), {"ledger_refusal": refusal})

    @admin.display(description="State")
    def state_now(self, consent: MarketingConsent) -> str:
        return consent.get_state_display()

    def get_queryset(self, request: HttpRequest) -> QuerySet[MarketingConsent]:
        # Erased addresses' tombstones are left out: the erasure records stand for them.
        return super().get_queryset(request).not_erased()

    @admin.display(description="Receipt")
    def receipt(self, consent: MarketingConsent) -> str:
        return receipt_link(consent)

    @admin.display(description="Current link")
    def current_link(self, consent: MarketingConsent) -> str:
        """The link the APIs hand out, as text to copy into a message to the person: opening it
        here would act in their name."""
        link = consent_link(consent)
        if link is None:
            return "—"
        what = "Confirmation link" if link["type"] == CONFIRM else "Unsubscribe link"
        return format_html(
            '<input type="text" readonly class="vLargeTextField" aria-label="{}" value="{}">'
            '<div class="help">{} ({}): for the person only. Copy it into a message to them; '
            "used in this browser, it records you, not them.</div>",
            what,
            link["url"],
            what,
            link["type"],
        )

    @admin.display(description="Last confirmation")
    def current_confirmation(self, consent: MarketingConsent) -> str:
        if consent.confirmation_date is None:
            return "—"
        return (
            f"{consent.get_confirmation_source_display()}, "
            f"{consent.get_confirmation_opt_in_level_display()}, "
            f"{shown_date(consent.confirmation_date)} — {consent.confirmation_description}"
        )

    @admin.display(description="Last revoke")
    def current_revoke(self, consent: MarketingConsent) -> str:
        if consent.revoke_date is None:
            return "—"
        return (
            f"{consent.get_revoke_source_display()}, {shown_date(consent.revoke_date)} — "
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
            result = consent_add(
                type=form.cleaned_data["type"],
                address=form.cleaned_data["address"],
                change=form.to_change(),
                context=context,
            )
        obj.pk = result.consent.pk
        obj.refresh_from_db()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConsentError as refused:
            # The ledger refused (an address that has a consent, someone else's change meanwhile,
            # an address it cannot read) and nothing was written: show the form as posted, with
            # the refusal as its error.
            request.ledger_refusal = refused
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_model(self, request: HttpRequest, obj: MarketingConsent) -> None:
        consent_delete(consent_id=obj.pk, context=admin_context(request, "Deleted in the admin."))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for consent in queryset.order_by("type", "address"):
            self.delete_model(request, consent)

    @admin.action(description="Revoke selected consents", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Asks for a reason on a page that shows the count and a sample; the confirmation
        carries the selection as Django's action form does (the list's filters and search in the
        URL, `select_across`, the page's checked rows), never one field per consent."""
        form = RevokeReasonForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            by_state = dict(queryset.order_by().values_list("state").annotate(Count("id")))
            total = sum(by_state.values())
            already_revoked = by_state.get(ConsentState.REVOKED, 0)
            more = max(total - REVOKE_SAMPLE_SIZE, 0)
            return TemplateResponse(
                request,
                "admin/consents/marketingconsent/revoke_selected.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Revoke the selected consents",
                    "opts": self.model._meta,
                    "total": total,
                    "total_shown": f"{total:,}",
                    "already_revoked": already_revoked,
                    "already_revoked_shown": f"{already_revoked:,}",
                    "sample": queryset[:REVOKE_SAMPLE_SIZE],
                    "more": more,
                    "more_shown": f"{more:,}",
                    "select_across": request.POST.get("select_across") == "1",
                    "checked": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                    "form": form,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        job = start_revoke_job(queryset, admin_context(request, form.cleaned_data["reason"]))
        if job.total <= settings.REVOKE_IN_REQUEST_MAX:
            self.message_user(request, run_revoke_job(job.id).summary)
            return None
        try:
            revoke_job_task.delay(job.id)
        except Exception:  # the job is recorded: the sweep queues it once the broker is back
            logger.exception("Could not queue revoke job %s; the sweep will pick it up.", job.id)
        url = reverse("admin:consents_revokejob_change", args=[job.id])
        self.message_user(
            request,
            format_html(
                "Revoking {} consents in the background, in batches. "
                '<a href="{}">Revoke job {}</a> shows its progress, and what was done once '
                "finished.",
                f"{job.total:,}",
                url,
                job.id,
            ),
        )
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


class CappedCountPaginator(Paginator):
    """Counts at most `cap` + 1 rows. The event list grows with every write; counting all of it
    on each page view would read every row. Past the cap, the list says "more than" and the
    filters (door, kind, date) narrow it down."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


@admin.register(ConsentEvent)
class ConsentEventAdmin(AddressSearchMixin, ReadOnlyAdmin):
    """The proof: read-only for everyone, superusers included."""

    list_display = ["recorded_at", "address", "kind", "state", "door", "actor"]
    list_filter = ["door", "kind", "state", ("recorded_at", admin.DateFieldListFilter)]
    fields = [
        "recorded_at",
        "consent",
        "type",
        "address",
        "kind",
        "revision",
        "previous_state",
        "state",
        "requested_state",
        "activity",
        "activity_description",
        "activity_level",
        "activity_date",
        "request",
        "door",
        "actor",
        "request_id",
        "ip_address",
        "user_agent",
        "note",
    ]
    readonly_fields = fields
    ordering = ["-recorded_at", "-id"]
    search_fields = ["address", "actor"]
    search_help_text = "Address (any spelling) or actor."
    paginator = CappedCountPaginator
    show_full_result_count = False

    @admin.display(description="Activity source")
    def activity(self, event: ConsentEvent) -> str:
        return activity_source_label(event)

    @admin.display(description="Activity opt-in level")
    def activity_level(self, event: ConsentEvent) -> str:
        level = event.activity_opt_in_level
        return OptInLevel(level).label if level in OptInLevel.values else level or "—"


# Our keys are ClientApiKey (with scope and API); the library's own model stays unused.
admin.site.unregister(APIKey)


@admin.register(ClientApiKey)
class ClientApiKeyAdmin(APIKeyModelAdmin):
    list_display = ["name", "prefix", "scope", "api", "created", "expiry_date", "revoked"]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope", "api", "revoked"]
    ordering = ["-created"]
