"""Staff manage webhook endpoints here: create (the secret is shown once), rotate the secret,
replay since a time, see every attempt and send one event again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from consents.webhooks import delivery
from consents.webhooks.models import EventType, WebhookAttempt, WebhookEndpoint
from consents.webhooks.targets import UnsafeTarget, check_url
from consentsite.read_only_admin import ReadOnlyAdmin


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="URL")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, initial=EventType.values
    )
    since = forms.DateTimeField(
        required=False,
        label="Deliver events since",
        help_text="Blank: a new endpoint starts from now, an existing one carries on. Set: "
        "every event recorded since then is delivered (again), in order.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "consent_type", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except UnsafeTarget as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "event", "status_code", "duration_ms", "error", "redelivery"]
    readonly_fields = fields
    ordering = ["-attempted_at", "-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("event")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "is_active", "status", "cursor", "last_delivered_at"]
    list_filter = ["is_active", ("failing_since", admin.EmptyFieldListFilter)]
    search_fields = ["url", "description"]
    readonly_fields = [
        "status",
        "cursor",
        "head_attempts",
        "next_attempt_at",
        "failing_since",
        "last_delivered_at",
        "disabled_reason",
        "created_at",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["rotate_secret"]

    @admin.display(description="status")
    def status(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.is_active:
            return f"disabled {endpoint.disabled_reason}".strip()
        if endpoint.is_failing:
            return f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
        if endpoint.head_attempts:
            return f"retrying ({endpoint.head_attempts} failed attempts)"
        return "ok"

    def save_model(
        self, request: HttpRequest, endpoint: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        since = form.cleaned_data.get("since")
        if not change:
            endpoint.cursor = delivery.starting_cursor(since)
            super().save_model(request, endpoint, form, change)
            messages.warning(
                request,
                format_html(
                    "Signing secret of {} (shown once, keep it now): <code>{}</code>",
                    endpoint.url,
                    endpoint.secret,
                ),
            )
            return
        super().save_model(request, endpoint, form, change)
        if since is not None:
            delivery.replay_since(endpoint, since)
            messages.info(request, f"Events since {since:%Y-%m-%d %H:%M} will be delivered again.")

    @admin.action(description="Rotate the signing secret (the old one signs for the overlap)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            secret = delivery.rotate_secret(endpoint)
            messages.warning(
                request,
                format_html(
                    "New signing secret of {} (shown once): <code>{}</code>", endpoint.url, secret
                ),
            )


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "attempted_at",
        "endpoint",
        "event",
        "status_code",
        "succeeded",
        "duration_ms",
        "error",
        "redelivery",
    ]
    list_filter = ["succeeded", "redelivery", "endpoint"]
    list_select_related = ["endpoint", "event"]
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]
    actions = ["redeliver"]

    @admin.action(description="Redeliver the event of the selected attempts", permissions=["view"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        from consents.webhooks.tasks import redeliver_event

        pairs = set(queryset.values_list("endpoint_id", "event_id"))
        for endpoint_id, event_id in sorted(pairs):
            redeliver_event.delay(endpoint_id, event_id)
        messages.success(request, f"Queued {len(pairs)} redeliveries.")
