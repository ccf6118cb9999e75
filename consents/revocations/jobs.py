"""Start and run revoke jobs (consents/revocations/models.py). The ledger does the revoking:
`consent_revoke_many`, leaving revoked consents as they are."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from consents.batches import batched, keyset_batches
from consents.ledger import ChangeContext, RevokeActivity, consent_revoke_many
from consents.models import RevokeSource
from consents.revocations.models import RevokeJob, RevokeJobItem


def start_revoke_job(selection: QuerySet, context: ChangeContext) -> RevokeJob:
    """A job for the consents of `selection`, the reason being the context's note. The selection
    is kept with the job (ids only, a batch at a time), so the job revokes what staff selected
    even if the list's filters would match other consents later."""
    size = settings.REVOKE_JOB_BATCH_SIZE
    with transaction.atomic():
        job = RevokeJob.objects.create(
            reason=context.note,
            actor=context.actor,
            asked_by=dataclasses.asdict(context),
            total=0,
        )
        ids = selection.order_by("id").values_list("id", flat=True).iterator(chunk_size=size)
        for batch in batched(ids, size):
            RevokeJobItem.objects.bulk_create(
                [RevokeJobItem(job=job, consent_id=consent_id) for consent_id in batch]
            )
            job.total += len(batch)
        job.save(update_fields=["total"])
    return job


def run_revoke_job(job_id: int) -> RevokeJob:
    """Run a job to its end from where it stopped. Each batch is one transaction: its
    revocations and the job's progress commit together, under a lock on the job, so two runs of
    the same job (a message delivered twice, the sweep) take turns and never repeat a batch."""
    size = settings.REVOKE_JOB_BATCH_SIZE
    while True:
        with transaction.atomic():
            job = RevokeJob.objects.select_for_update().get(id=job_id)
            if job.status == RevokeJob.Status.DONE:
                return job
            batch = next(keyset_batches(job.items.all(), size, "consent_id", after=job.cursor), [])
            if batch:
                counts = consent_revoke_many(
                    consent_ids=[consent_id for _, consent_id in batch],
                    revoke=RevokeActivity(source=RevokeSource.OTHER, description=job.reason),
                    context=job.context,
                    keep_revoked=True,
                    batch_size=len(batch),
                )
                for name, number in counts.items():
                    job.counts[name] = job.counts.get(name, 0) + number
                job.cursor = batch[-1][0]
                job.done += len(batch)
                job.status = RevokeJob.Status.RUNNING
            else:
                job.status = RevokeJob.Status.DONE
                job.finished_at = timezone.now()
            job.updated_at = timezone.now()
            job.save()


def mark_seen(job: RevokeJob) -> None:
    """Note that the sweep queued this job again, so that it is not queued on every sweep."""
    RevokeJob.objects.filter(id=job.id).update(updated_at=timezone.now())
