"""Webhook endpoints and their delivery attempts. An endpoint's row also holds its delivery
state (cursor, head retries, lease): consent events themselves are never written to."""

import base64
import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from consents.models import ConsentEvent, ConsentType, EventKind


class EventType(models.TextChoices):
    CREATED = "marketing_consent.created"
    UPDATED = "marketing_consent.updated"
    DELETED = "marketing_consent.deleted"


# The ledger event kinds each webhook event type carries; UNCHANGED and SUPERSEDED change nothing.
# An erased address's consent is gone for its consumers: they hear of it as deleted.
KINDS_OF_EVENT_TYPE = {
    EventType.CREATED: (EventKind.CREATED,),
    EventType.UPDATED: (EventKind.UPDATED,),
    EventType.DELETED: (EventKind.DELETED, EventKind.ERASED),
}


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """A consumer's URL, what it subscribes to, its signing secrets and its delivery state."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, help_text="Webhook event types delivered (marketing_consent.created, …)."
    )
    consent_type = models.CharField(
        max_length=5, choices=ConsentType.choices, blank=True, help_text="Blank: both types."
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    secret = models.CharField(max_length=100, default=new_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)

    # Delivery state: every event with an id up to `cursor` is done for this endpoint; the next
    # matching one (the head) has failed `head_attempts` times and is retried at next_attempt_at.
    cursor = models.BigIntegerField(default=0)
    head_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="Set when the head event has used up its retries."
    )
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    # One worker delivers for an endpoint at a time: the holder of an unexpired lease.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set by a commit that woke the endpoint and cleared by the delivery it queued, so that a
    # burst of commits queues one delivery, not one each.
    wake_pending = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook endpoint"
        constraints = [
            models.CheckConstraint(
                condition=Q(consent_type__in=[*ConsentType.values, ""]),
                name="webhook_endpoint_consent_type",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    @property
    def is_failing(self) -> bool:
        return self.failing_since is not None

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during its overlap."""
        now = now or timezone.now()
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and (self.previous_secret_expires_at > now)
        ):
            return [self.secret, self.previous_secret]
        return [self.secret]

    def delivered_kinds(self) -> list[str]:
        return [kind for t in EventType if t in self.event_types for kind in KINDS_OF_EVENT_TYPE[t]]

    def matching_events(self) -> models.QuerySet:
        """The ledger events this endpoint subscribes to, in ledger order."""
        events = ConsentEvent.objects.filter(kind__in=self.delivered_kinds())
        if self.consent_type:
            events = events.filter(type=self.consent_type)
        return events.order_by("id")


class WebhookAttempt(models.Model):
    """One HTTP delivery attempt of one event to one endpoint, successful or not."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    # A plain reference, as events are never deleted.
    event = models.ForeignKey(
        ConsentEvent, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True, help_text="Why it failed, if it did.")
    response_excerpt = models.TextField(blank=True)
    redelivery = models.BooleanField(
        default=False, help_text="Sent again on request, outside the ordered stream."
    )

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-attempted_at"], name="webhook_attempt_endpoint_idx"),
            models.Index(fields=["event"], name="webhook_attempt_event_idx"),
        ]

    def __str__(self) -> str:
        outcome = self.status_code or self.error or "no answer"
        return f"event {self.event_id} → {self.endpoint_id}: {outcome}"
