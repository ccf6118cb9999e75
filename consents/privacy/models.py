"""The record of each erasure: who asked it, when, why, and what it touched (no personal data)."""

from django.db import models
from django.utils import timezone

from consents.models import Door


class Erasure(models.Model):
    """One erased person. Kept for accountability: it names the member rows and consents (now
    tombstones) by their ids, never by an address or a name."""

    erased_at = models.DateTimeField(default=timezone.now, db_index=True)
    door = models.CharField(max_length=11, choices=Door.choices)
    actor = models.CharField(max_length=150)
    reason = models.TextField()
    member_account_ids = models.JSONField(default=list, blank=True)
    consent_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure {self.pk} on {self.erased_at:%Y-%m-%d} by {self.actor}"
