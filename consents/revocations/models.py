"""Staff's revocation of a selection of consents, as a job: the selection is kept with it, and it
is run in batches, each one transaction together with the job's progress, so that a run stopped
anywhere (a killed worker, a deploy) carries on where it stopped and never revokes twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from consents.ledger import ChangeContext


class RevokeJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"

    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(help_text="Recorded on every revocation.")
    actor = models.CharField(max_length=150, help_text="The staff user who asked.")
    asked_by = models.JSONField(help_text="The request's ChangeContext, recorded on each event.")
    total = models.PositiveIntegerField(help_text="Consents selected.")
    done = models.PositiveIntegerField(default=0, help_text="Consents handled so far.")
    cursor = models.BigIntegerField(default=0, help_text="The last item handled.")
    counts = models.JSONField(
        default=dict, help_text="What the ledger did: updated, already_revoked, not_found…"
    )
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last progress.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"], name="revokejob_unfinished")]

    def __str__(self) -> str:
        return (
            f"Revoke job {self.pk}: {self.done:,} of {self.total:,} ({self.get_status_display()})"
        )

    @property
    def context(self) -> ChangeContext:
        from consents.ledger import ChangeContext  # the ledger imports these models' module

        return ChangeContext(**self.asked_by)

    @property
    def summary(self) -> str:
        counts = self.counts
        text = (
            f"Revoked {counts.get('updated', 0)} consent(s); "
            f"{counts.get('already_revoked', 0)} were already revoked."
        )
        if counts.get("not_found"):
            text += f" {counts['not_found']} had been deleted meanwhile."
        return text


class RevokeJobItem(models.Model):
    """One selected consent of a job, in the order the job handles them."""

    job = models.ForeignKey(RevokeJob, on_delete=models.CASCADE, related_name="items")
    consent_id = models.UUIDField()

    def __str__(self) -> str:
        return f"{self.consent_id} (revoke job {self.job_id})"
