"""Members of a loyalty programme and the sessions that clients bind to them."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from consents.addresses import normalize_email, normalize_phone
from consents.exceptions import InvalidAddress
from consents.models import ClientApiKey
from members.exceptions import CorrelationIdInUse


class Channel(models.TextChoices):
    APP = "APP", "App"
    STORE = "STORE", "Store"
    POS = "POS", "Point of sale"
    PARTNER = "PARTNER", "Partner"
    WEBSITE = "WEBSITE", "Website"


class IdentifierType(models.TextChoices):
    """How the member API's clients name a member (the `X-Identifier-Type` header)."""

    ACCOUNT_ID = "ACCOUNT_ID"
    LOYALTY_ID = "LOYALTY_ID"
    EXTERNAL_ID = "EXTERNAL_ID"
    EMAIL = "EMAIL"
    PHONE_NUMBER = "PHONE_NUMBER"


class Member(models.Model):
    """A loyalty member. Consent belongs to addresses: a member only points at its email and
    phone."""

    account_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    loyalty_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    external_id = models.CharField(max_length=128, unique=True, null=True, blank=True)
    email = models.CharField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True, db_index=True, help_text="E.164")
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(loyalty_id=""), name="member_loyalty_id_not_blank"),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="member_external_id_not_blank"
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or str(self.account_id)

    def clean(self) -> None:
        """Store addresses in their normalised spelling, as every door looks them up."""
        errors = {}
        for field, normalize in (("email", normalize_email), ("phone", normalize_phone)):
            value = getattr(self, field)
            if value:
                try:
                    setattr(self, field, normalize(value))
                except InvalidAddress as exc:
                    errors[field] = exc.message
        if errors:
            raise ValidationError(errors)


class MemberSessionQuerySet(models.QuerySet):
    @transaction.atomic
    def start(
        self, *, correlation_id: str, member: Member, channel: str, api_key: ClientApiKey
    ) -> "MemberSession":
        """Bind a correlation id to a member for `MEMBER_SESSION_TTL` seconds, for the client of
        `api_key` only (no other client can use it, or take it over).

        Starting it again for the same member by the same client refreshes it (a later expiry).
        While it is bound to another member or client it is refused with `CorrelationIdInUse`;
        once that binding has expired the id is free and starts a new session.
        Two clients starting the same id at once meet at the unique constraint: the loser goes on
        with the winner's row, as if it had come second.
        """
        now = timezone.now()
        expires_at = now + timedelta(seconds=settings.MEMBER_SESSION_TTL)
        session = self.select_for_update().filter(correlation_id=correlation_id).first()
        if session is None:
            try:
                with transaction.atomic():
                    return self.create(
                        correlation_id=correlation_id,
                        member=member,
                        api_key=api_key,
                        channel=channel,
                        created_at=now,
                        expires_at=expires_at,
                    )
            except IntegrityError:
                session = self.select_for_update().get(correlation_id=correlation_id)
        expired = session.expires_at <= now
        held = session.member_id != member.pk or session.api_key_id != api_key.pk
        if held and not expired:
            raise CorrelationIdInUse(correlation_id)
        if expired:
            session.created_at = now  # a new session, not a refresh
        session.member = member
        session.api_key = api_key
        session.channel = channel
        session.expires_at = expires_at
        session.save(update_fields=["member", "api_key", "channel", "created_at", "expires_at"])
        return session


class MemberSession(models.Model):
    """A client-chosen correlation id bound to a member until it expires."""

    correlation_id = models.CharField(max_length=128, unique=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessions")
    # The client that started the session, the only one that may use it. (Empty only for
    # sessions started before sessions were bound: no client may use those.)
    api_key = models.ForeignKey(
        ClientApiKey, on_delete=models.CASCADE, null=True, related_name="member_sessions"
    )
    channel = models.CharField(max_length=7, choices=Channel.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = MemberSessionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="member_session_channel"
            ),
        ]

    def __str__(self) -> str:
        return self.correlation_id

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
