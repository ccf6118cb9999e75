"""The consent ledger's tables: the current state of each address and the append-only proof."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey


class ConsentType(models.TextChoices):
    EMAIL = "EMAIL"
    PHONE = "PHONE"


class ConsentState(models.TextChoices):
    UNKNOWN_STATE = "UNKNOWN_STATE"
    NEVER_CONFIRMED = "NEVER_CONFIRMED"
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REVOKED = "REVOKED"


class ConfirmationSource(models.TextChoices):
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
    IN_PERSON = "IN_PERSON"
    FORM = "FORM"
    LINK_CONFIRMATION = "LINK_CONFIRMATION"
    EMAIL_SERVICE = "EMAIL_SERVICE"
    WIX_USERS = "WIX_USERS"
    OTHER = "OTHER"


class RevokeSource(models.TextChoices):
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
    IN_PERSON = "IN_PERSON"
    FORM = "FORM"
    REVOKE_LINK = "REVOKE_LINK"
    OTHER = "OTHER"


class OptInLevel(models.TextChoices):
    UNKNOWN_OPT_IN_LEVEL = "UNKNOWN_OPT_IN_LEVEL"
    SINGLE_CONFIRMATION = "SINGLE_CONFIRMATION"
    DOUBLE_CONFIRMATION = "DOUBLE_CONFIRMATION"


class Door(models.TextChoices):
    MEMBER_API = "MEMBER_API"
    CONSENT_API = "CONSENT_API"
    LINK = "LINK"
    ADMIN = "ADMIN"
    COMMAND = "COMMAND"


class EventKind(models.TextChoices):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    SUPERSEDED = "SUPERSEDED"
    DELETED = "DELETED"


class ApiScope(models.TextChoices):
    READ = "read", "Read only"
    MANAGE = "manage", "Read and write"


class ApiName(models.TextChoices):
    ANY = "any", "Every API"
    MEMBER = "member", "Member API only"
    CONSENT = "consent", "Consent API only"


def _in_choices(field: str, choices: type[models.TextChoices], *, blank: bool = False) -> Q:
    allowed = Q(**{f"{field}__in": choices.values})
    return allowed | Q(**{field: ""}) if blank else allowed


class MarketingConsent(models.Model):
    """The current consent of one email address or phone number. Written only by the ledger."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=5, choices=ConsentType.choices)
    address = models.CharField(max_length=320, help_text="Normalised: lower-case email or E.164.")
    state = models.CharField(max_length=15, choices=ConsentState.choices, db_index=True)
    revision = models.PositiveIntegerField(default=1)

    confirmation_source = models.CharField(
        max_length=17, choices=ConfirmationSource.choices, blank=True
    )
    confirmation_description = models.TextField(blank=True)
    confirmation_date = models.DateTimeField(null=True, blank=True)
    confirmation_opt_in_level = models.CharField(
        max_length=20, choices=OptInLevel.choices, blank=True
    )

    revoke_source = models.CharField(max_length=14, choices=RevokeSource.choices, blank=True)
    revoke_description = models.TextField(blank=True)
    revoke_date = models.DateTimeField(null=True, blank=True)

    extended_fields = models.JSONField(default=dict, blank=True)
    created_date = models.DateTimeField(default=timezone.now, db_index=True)
    updated_date = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["type", "address"], name="consent_unique_address"),
            models.CheckConstraint(condition=_in_choices("type", ConsentType), name="consent_type"),
            models.CheckConstraint(
                condition=_in_choices("state", ConsentState), name="consent_state"
            ),
            models.CheckConstraint(
                condition=_in_choices("confirmation_source", ConfirmationSource, blank=True),
                name="consent_confirmation_source",
            ),
            models.CheckConstraint(
                condition=_in_choices("confirmation_opt_in_level", OptInLevel, blank=True),
                name="consent_confirmation_opt_in_level",
            ),
            models.CheckConstraint(
                condition=_in_choices("revoke_source", RevokeSource, blank=True),
                name="consent_revoke_source",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="consent_revision"),
            models.CheckConstraint(condition=~Q(address=""), name="consent_address"),
            # The rule the ledger enforces, kept true by the database as well.
            models.CheckConstraint(
                condition=~Q(state__in=["PENDING", "CONFIRMED"])
                | Q(confirmation_date__isnull=False),
                name="consent_confirmed_has_confirmation",
            ),
            models.CheckConstraint(
                condition=~Q(state="REVOKED") | Q(revoke_date__isnull=False),
                name="consent_revoked_has_revoke",
            ),
        ]
        indexes = [
            models.Index(fields=["address"], name="consent_address_idx"),
            models.Index(fields=["confirmation_date"], name="consent_confirmation_date_idx"),
            models.Index(fields=["revoke_date"], name="consent_revoke_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.address} ({self.state})"

    @property
    def has_confirmation(self) -> bool:
        return self.confirmation_date is not None

    @property
    def has_revoke(self) -> bool:
        return self.revoke_date is not None

    @property
    def newest_activity_date(self):
        """The date of the newest activity on this consent, or None (latest consent wins)."""
        dates = [d for d in (self.confirmation_date, self.revoke_date) if d is not None]
        return max(dates, default=None)


class ConsentEventQuerySet(models.QuerySet):
    """Events are proof: the application never rewrites or removes them."""

    def update(self, **kwargs):
        raise TypeError("Consent events are append-only.")

    def delete(self):
        raise TypeError("Consent events are append-only.")


class ConsentEvent(models.Model):
    """One row per ledger call: what was asked, through which door, by whom, and what happened."""

    # A plain reference, not a cascading key: the proof outlives a deleted consent.
    consent = models.ForeignKey(
        MarketingConsent,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="events",
    )
    type = models.CharField(max_length=5, choices=ConsentType.choices)
    address = models.CharField(max_length=320)
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    revision = models.PositiveIntegerField()
    previous_state = models.CharField(max_length=15, choices=ConsentState.choices, blank=True)
    state = models.CharField(max_length=15, choices=ConsentState.choices)

    requested_state = models.CharField(max_length=15, choices=ConsentState.choices, blank=True)
    activity_source = models.CharField(max_length=17, blank=True)
    activity_description = models.TextField(blank=True)
    activity_opt_in_level = models.CharField(max_length=20, blank=True)
    activity_date = models.DateTimeField(null=True, blank=True)
    request = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder, help_text="The change as it was sent."
    )

    door = models.CharField(max_length=11, choices=Door.choices)
    actor = models.CharField(max_length=150)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    note = models.TextField(blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    objects = ConsentEventQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in_choices("kind", EventKind), name="event_kind"),
            models.CheckConstraint(condition=_in_choices("door", Door), name="event_door"),
            models.CheckConstraint(
                condition=_in_choices("state", ConsentState), name="event_state"
            ),
            models.CheckConstraint(
                condition=_in_choices("previous_state", ConsentState, blank=True),
                name="event_previous_state",
            ),
        ]
        indexes = [
            models.Index(fields=["consent", "-recorded_at"], name="event_consent_idx"),
            models.Index(fields=["address"], name="event_address_idx"),
            models.Index(fields=["recorded_at"], name="event_recorded_at_idx"),
            models.Index(fields=["actor"], name="event_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.address} r{self.revision} via {self.door}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise TypeError("Consent events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Consent events are append-only.")


class ClientApiKey(AbstractAPIKey):
    """An API key of a client system; its name is the actor recorded on every write it makes."""

    scope = models.CharField(max_length=6, choices=ApiScope.choices, default=ApiScope.MANAGE)
    api = models.CharField(max_length=7, choices=ApiName.choices, default=ApiName.ANY)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(condition=_in_choices("scope", ApiScope), name="apikey_scope"),
            models.CheckConstraint(condition=_in_choices("api", ApiName), name="apikey_api"),
        ]


class IdempotencyRecord(models.Model):
    """The first response to a write sent with an `Idempotency-Key`, replayed to its retries.

    Unique per API key and idempotency key; a row without a status is a request still running.
    """

    api_key_id = models.CharField(max_length=150)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key_id", "key"], name="idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'running'})"


class RequestCount(models.Model):
    """Requests asked for by one API key's processes in its current throttling window (DRF's
    rate, in fixed windows; see consentsite.auth.ApiKeyRateThrottle).

    On PostgreSQL the table is UNLOGGED: counting writes no WAL, and a crash only resets counts."""

    key = models.CharField(max_length=150, primary_key=True)
    period = models.BigIntegerField(help_text="Start of the window, in seconds since the epoch.")
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.key} @ {self.period}: {self.count}"


# The change-event (webhook) models live with their feature; importing them registers them here.
from consents.webhooks.models import WebhookAttempt, WebhookEndpoint  # noqa: E402, F401
