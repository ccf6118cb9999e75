"""Staff view of members: find anyone by any identifier, see the consents of their addresses."""

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from consents.admin import normalised_spellings
from consents.models import ConsentState, ConsentType, MarketingConsent
from consents.privacy.admin import erase_person_action, export_person_action
from members.models import Member, MemberSession
from members.selectors import consents_of_member


def _state_of(consent_type: str, address_field: str) -> Subquery:
    return Subquery(
        MarketingConsent.objects.filter(type=consent_type, address=OuterRef(address_field)).values(
            "state"
        )[:1]
    )


class HasValueFilter(admin.SimpleListFilter):
    """Yes / No: whether a member has a value in `field` (empty means none)."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(**{self.field: ""})
        if self.value() == "no":
            return queryset.filter(**{self.field: ""})
        return queryset


class HasEmailFilter(HasValueFilter):
    title = "has email"
    parameter_name = "has_email"
    field = "email"


class HasPhoneFilter(HasValueFilter):
    title = "has phone"
    parameter_name = "has_phone"
    field = "phone"


def _state_label(state: str | None) -> str:
    return ConsentState(state).label if state else "—"


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "email",
        "email_consent",
        "phone",
        "sms_consent",
        "loyalty_id",
        "updated_at",
    ]
    list_filter = [HasEmailFilter, HasPhoneFilter, ("created_at", admin.DateFieldListFilter)]
    ordering = ["-updated_at"]
    search_fields = ["account_id", "loyalty_id", "external_id", "email", "phone", "last_name"]
    search_help_text = "Account, loyalty or external id, name, email or phone (any spelling)."
    actions = [export_person_action, erase_person_action]
    readonly_fields = ["account_id", "consents", "created_at", "updated_at"]
    fields = [
        "account_id",
        "loyalty_id",
        "external_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "consents",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                email_state=_state_of(ConsentType.EMAIL, "email"),
                sms_state=_state_of(ConsentType.PHONE, "phone"),
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            spellings = normalised_spellings(search_term)
            results |= queryset.filter(email__in=spellings) | queryset.filter(phone__in=spellings)
        return results, may_have_duplicates

    @admin.display(description="Name", ordering="last_name")
    def name(self, member: Member) -> str:
        return f"{member.first_name} {member.last_name}".strip()

    @admin.display(description="Email consent", ordering="email_state")
    def email_consent(self, member: Member) -> str:
        return _state_label(member.email_state)

    @admin.display(description="SMS consent", ordering="sms_state")
    def sms_consent(self, member: Member) -> str:
        return _state_label(member.sms_state)

    @admin.display(description="Consents of this member's addresses")
    def consents(self, member: Member) -> str:
        rows = [
            (
                reverse("admin:consents_marketingconsent_change", args=[consent.pk]),
                consent.get_type_display(),
                consent.address,
                consent.get_state_display(),
                consent.revision,
            )
            for consent in consents_of_member(member)
        ]
        if not rows:
            return "No consent recorded for this member's addresses."
        return format_html(
            "<table><tr><th>Type</th><th>Address</th><th>State</th><th>Revision</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td>{1}</td><td><a href="{0}">{2}</a></td><td>{3}</td><td>{4}</td></tr>',
                rows,
            ),
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.full_clean()  # normalises email and phone, as every door looks them up
        super().save_model(request, obj, form, change)


@admin.register(MemberSession)
class MemberSessionAdmin(admin.ModelAdmin):
    list_display = ["correlation_id", "member", "channel", "created_at", "expires_at"]
    list_select_related = ["member"]
    ordering = ["-created_at"]
    search_fields = ["correlation_id"]
    raw_id_fields = ["member"]
