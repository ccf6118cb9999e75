"""Privacy requests in the admin: the erasure records, the export and erase actions on members
and consents, and a consent's ISO/IEC TS 27560 receipt."""

import dataclasses
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from consents.addresses import mask_address
from consents.models import ConsentType, Door, MarketingConsent
from consents.privacy.erasure import erase_person
from consents.privacy.export import subject_access_export
from consents.privacy.iso27560 import consent_receipt
from consents.privacy.models import Erasure
from consents.privacy.person import Person, find_person
from consents.selectors import consent_by_id
from consentsite.change_context import change_context
from consentsite.read_only_admin import ReadOnlyAdmin
from members.models import Member

CONFIRMATION_WORD = "ERASE"


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ["erased_at", "actor", "door", "reason", "members", "addresses"]
    readonly_fields = [
        "erased_at",
        "door",
        "actor",
        "reason",
        "member_account_ids",
        "consent_ids",
    ]
    search_fields = ["reason", "actor"]

    @admin.display(description="Members")
    def members(self, erasure: Erasure) -> int:
        return len(erasure.member_account_ids)

    @admin.display(description="Addresses")
    def addresses(self, erasure: Erasure) -> int:
        return len(erasure.consent_ids)

    def get_urls(self) -> list:
        receipt = self.admin_site.admin_view(consent_receipt_view)
        return [
            path("receipt/<uuid:consent_id>/", receipt, name="privacy_consent_receipt"),
            *super().get_urls(),
        ]


def consent_receipt_view(request: HttpRequest, consent_id: Any) -> HttpResponse:
    if not request.user.has_perm("consents.view_marketingconsent"):
        raise Http404
    consent = consent_by_id(consent_id, erased_too=True)
    if consent is None:
        raise Http404
    return JsonResponse(consent_receipt([consent]), json_dumps_params={"indent": 2})


def receipt_link(consent: MarketingConsent) -> str:
    url = reverse("admin:privacy_consent_receipt", args=[consent.pk])
    return format_html('<a href="{}">ISO/IEC TS 27560 receipt (JSON)</a>', url)


def person_of(row: Member | MarketingConsent) -> Person:
    if isinstance(row, Member):
        return find_person(member=str(row.account_id))
    if row.type == ConsentType.EMAIL:
        return find_person(email=row.address)
    return find_person(phone=row.address)


def _one_person(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> Person | None:
    if queryset.count() != 1:
        modeladmin.message_user(request, "Select exactly one row.", messages.WARNING)
        return None
    return person_of(queryset.get())


@admin.action(description="Export everything held about this person (JSON)")
def export_person_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    person = _one_person(modeladmin, request, queryset)
    if person is None:
        return None
    document = json.dumps(subject_access_export(person), indent=2, cls=DjangoJSONEncoder)
    response = HttpResponse(document, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="person-export.json"'
    return response


class EraseForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        help_text="Why (e.g. the request's reference). Recorded on the erasure; no personal data.",
    )
    confirmation = forms.CharField(help_text=f"Type {CONFIRMATION_WORD} to confirm.")

    def clean_confirmation(self) -> str:
        if self.cleaned_data["confirmation"] != CONFIRMATION_WORD:
            raise forms.ValidationError(f"Type {CONFIRMATION_WORD} to confirm.")
        return CONFIRMATION_WORD


@admin.action(description="Erase this person…", permissions=["delete"])
def erase_person_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    person = _one_person(modeladmin, request, queryset)
    if person is None:
        return None
    form = EraseForm(request.POST if "confirm" in request.POST else None)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "admin/privacy/erase_person.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": "Erase this person",
                "opts": modeladmin.model._meta,
                "members": person.members,
                "addresses": [(t, mask_address(a)) for t, a in person.addresses],
                "selected": queryset.get().pk,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )
    context = dataclasses.replace(
        change_context(request, door=Door.ADMIN, actor=request.user.get_username()),
        note=form.cleaned_data["reason"],
    )
    erasure = erase_person(person, context=context)
    modeladmin.message_user(
        request,
        f"Erased {len(erasure.member_account_ids)} member(s) and "
        f"{len(erasure.consent_ids)} address(es); erasure record {erasure.pk}.",
    )
    return None
