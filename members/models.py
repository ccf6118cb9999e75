"""Members of a loyalty programme and the sessions that clients bind to them."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from consents.addresses import normalize_email, normalize_phone
from consents.exceptions import InvalidAddress


class Channel(models.TextChoices):
    APP = "APP"
    STORE = "STORE"
    POS = "POS"
    PARTNER = "PARTNER"
    WEBSITE = "WEBSITE"


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
    def active(self) -> "MemberSessionQuerySet":
        return self.filter(expires_at__gt=timezone.now())


class MemberSession(models.Model):
    """A client-chosen correlation id bound to a member until it expires."""

    correlation_id = models.CharField(max_length=128, unique=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessions")
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
