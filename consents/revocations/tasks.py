"""Celery tasks: run a revoke job, and the periodic sweep that queues again the jobs a lost
message or a killed worker left unfinished."""

from __future__ import annotations

from celery import shared_task

from consents.revocations import jobs
from consents.selectors import stalled_revoke_jobs


# Acknowledged once run: a worker killed mid-job leaves the message to be delivered again where
# the broker does that; the sweep covers the brokers that do not.
@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_revoke_job(job_id: int) -> None:
    jobs.run_revoke_job(job_id)


@shared_task(ignore_result=True)
def sweep_revoke_jobs() -> None:
    for job in stalled_revoke_jobs():
        jobs.mark_seen(job)
        run_revoke_job.delay(job.id)
