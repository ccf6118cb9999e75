"""The consent ledger's tables: the current state of each address and the append-only proof."""

import uuid

import pgtrigger
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from consents.addresses import ERASED_PREFIX
from consentsite.rows import columns


# Each enum's value is the contract's spelling (APIs, exports, commands); its label is the word the
# admin shows.
class ConsentType(models.TextChoices):
    EMAIL = "EMAIL", "Email"
    PHONE = "PHONE", "Phone"


class ConsentState(models.TextChoices):
    UNKNOWN_STATE = "UNKNOWN_STATE", "Unknown state"
    NEVER_CONFIRMED = "NEVER_CONFIRMED", "Never confirmed"
    PENDING = "PENDING", "Pending"
    CONFIRMED = "CONFIRMED", "Confirmed"
    REVOKED = "REVOKED", "Revoked"


class ConfirmationSource(models.TextChoices):
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE", "Unknown source"
    IN_PERSON = "IN_PERSON", "In person"
    FORM = "FORM", "Form"
    LINK_CONFIRMATION = "LINK_CONFIRMATION", "Confirmation link"
    EMAIL_SERVICE = "EMAIL_SERVICE", "Email service"
    WIX_USERS = "WIX_USERS", "Wix Users"
    OTHER = "OTHER", "Other"


class RevokeSource(models.TextChoices):
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE", "Unknown source"
    IN_PERSON = "IN_PERSON", "In person"
    FORM = "FORM", "Form"
    REVOKE_LINK = "REVOKE_LINK", "Unsubscribe link"
    OTHER = "OTHER", "Other"


class OptInLevel(models.TextChoices):
    UNKNOWN_OPT_IN_LEVEL = "UNKNOWN_OPT_IN_LEVEL", "Unknown level"
    SINGLE_CONFIRMATION = "SINGLE_CONFIRMATION", "Single confirmation"
    DOUBLE_CONFIRMATION = "DOUBLE_CONFIRMATION", "Double confirmation"


class Door(models.TextChoices):
    MEMBER_API = "MEMBER_API", "Member API"
    CONSENT_API = "CONSENT_API", "Consent API"
    LINK = "LINK", "Link page"
    ADMIN = "ADMIN", "Admin"
    COMMAND = "COMMAND", "Command"
    SMS = "SMS", "SMS"


class EventKind(models.TextChoices):
    CREATED = "CREATED", "Created"
    UPDATED = "UPDATED", "Updated"
    UNCHANGED = "UNCHANGED", "Unchanged"
    SUPERSEDED = "SUPERSEDED", "Superseded"
    DELETED = "DELETED", "Deleted"
    ERASED = "ERASED", "Erased"


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


class MarketingConsentQuerySet(models.QuerySet):
    def not_erased(self) -> "MarketingConsentQuerySet":
        """Without tombstones: the consents of erased addresses, stored under a keyed hash
        (docs/privacy.md). They are reached only through their address, never listed or
        fetched by id."""
        return self.exclude(address__startswith=ERASED_PREFIX)


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

    objects = MarketingConsentQuerySet.as_manager()

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
        return f"{self.get_type_display()} {self.address} ({self.get_state_display()})"

    @property
    def is_erased(self) -> bool:
        """A tombstone: the opt-out of an erased address, kept under its keyed hash."""
        return self.address.startswith(ERASED_PREFIX)

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


CONSENT_COLUMNS = columns(MarketingConsent)
CONSENT_ATTNAMES = [field.attname for field in MarketingConsent._meta.concrete_fields]


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
            # One inbound SMS makes one ledger call: a retried webhook cannot write again, even
            # when the retry races the first delivery.
            models.UniqueConstraint(
                fields=["request_id"], condition=Q(door="SMS"), name="event_sms_message_once"
            ),
        ]
        # Append-only in PostgreSQL itself, whatever the client (raw SQL, a console, another
        # app). The one deliberate way around it is `consents.ledger.redaction.redact_events`.
        triggers = [
            pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]
        indexes = [
            models.Index(fields=["consent", "-recorded_at"], name="event_consent_idx"),
            models.Index(fields=["address"], name="event_address_idx"),
            models.Index(fields=["recorded_at"], name="event_recorded_at_idx"),
            models.Index(fields=["actor"], name="event_actor_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} {self.address}, revision {self.revision}, "
            f"via {self.get_door_display()}"
        )

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

    Unique per API key and idempotency key; a row without a status is a request still running,
    whose claim lapses at `expires_at` (its lease); a kept response lapses there too (its TTL).
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
# So do the staff's revoke jobs.
from consents.revocations.models import RevokeJob, RevokeJobItem  # noqa: E402, F401
from consents.webhooks.models import WebhookAttempt, WebhookEndpoint  # noqa: E402, F401
