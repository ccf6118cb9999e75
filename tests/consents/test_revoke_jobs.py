"""The admin's "revoke selected" on a large selection: a revoke job run by a Celery worker, in
batches that each commit with the job's progress, so that a stopped run resumes and never
revokes twice."""

import os
import signal
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent
from consents.revocations import jobs, tasks
from consents.revocations.models import RevokeJob
from tests.factories import MarketingConsentFactory
from tests.webhooks.test_worker import start_worker, stop, wait_until

SYSTEM = ChangeContext(door="CONSENT_API", actor="crm-sync")
STAFF = ChangeContext(door="ADMIN", actor="sam", note="Complaint 9")
CHANGELIST = reverse("admin:consents_marketingconsent_changelist")
OPT_IN = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM"))
OPT_OUT = ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM"))


def make(address: str, change: ConsentChange = OPT_IN) -> MarketingConsent:
    return consent_upsert(type="EMAIL", address=address, change=change, context=SYSTEM).consent


@pytest.fixture
def selection(db):
    """Three consents to revoke and one revoked already."""
    return [make(f"j{n}@example.com") for n in range(3)] + [make("r@example.com", OPT_OUT)]


def revoke_all(admin_client):
    one = MarketingConsent.objects.first()
    return admin_client.post(
        CHANGELIST,
        {
            "action": "revoke_selected",
            "select_across": "1",
            "_selected_action": [one.pk],
            "confirm": "yes",
            "reason": "Complaint 9",
        },
        follow=True,
    )


def admin_revocations() -> list[tuple[str, str, str]]:
    return sorted(ConsentEvent.objects.filter(door="ADMIN").values_list("address", "kind", "actor"))


def test_a_selection_over_the_limit_is_queued_as_a_job_and_the_page_says_so(
    admin_client, admin_user, selection, settings
):
    settings.REVOKE_IN_REQUEST_MAX = 3
    with mock.patch.object(tasks.run_revoke_job, "delay") as queued:
        response = revoke_all(admin_client)

    job = RevokeJob.objects.get()
    queued.assert_called_once_with(job.id)
    job_url = reverse("admin:consents_revokejob_change", args=[job.id])
    assert [str(m) for m in response.context["messages"]] == [
        "Revoking 4 consents in the background, in batches. "
        f'<a href="{job_url}">Revoke job {job.id}</a> shows its progress, and what was done '
        "once finished."
    ]
    assert (job.status, job.total, job.done, job.actor, job.reason) == (
        "QUEUED",
        4,
        0,
        admin_user.username,
        "Complaint 9",
    )
    assert set(MarketingConsent.objects.values_list("state", flat=True)) == {
        "CONFIRMED",
        "REVOKED",
    }
    assert admin_revocations() == []
    page = admin_client.get(job_url).content.decode()
    assert "0 of 4 (0%)" in page
    assert "Queued" in page


def test_a_job_revokes_in_batches_records_staff_as_actor_and_shows_its_result(
    admin_client, admin_user, selection, settings
):
    settings.REVOKE_JOB_BATCH_SIZE = 2
    job = jobs.start_revoke_job(MarketingConsent.objects.all(), STAFF)

    done = jobs.run_revoke_job(job.id)

    assert (done.status, done.done, done.counts) == (
        "DONE",
        4,
        {"updated": 3, "already_revoked": 1},
    )
    assert done.summary == "Revoked 3 consent(s); 1 were already revoked."
    assert admin_revocations() == [(f"j{n}@example.com", "UPDATED", "sam") for n in range(3)]
    assert set(MarketingConsent.objects.values_list("state", flat=True)) == {"REVOKED"}
    page = admin_client.get(reverse("admin:consents_revokejob_change", args=[job.id]))
    assert "4 of 4 (100%)" in page.content.decode()
    assert "Revoked 3 consent(s); 1 were already revoked." in page.content.decode()


def test_a_job_stopped_mid_way_resumes_after_its_last_committed_batch(selection, settings):
    settings.REVOKE_JOB_BATCH_SIZE = 2
    job = jobs.start_revoke_job(MarketingConsent.objects.all(), STAFF)
    real = jobs.consent_revoke_many
    calls = []

    def dies_on_the_second_batch(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real(**kwargs)

    with (
        mock.patch.object(jobs, "consent_revoke_many", dies_on_the_second_batch),
        pytest.raises(SystemExit),
    ):
        jobs.run_revoke_job(job.id)
    job.refresh_from_db()
    assert (job.status, job.done, sum(job.counts.values())) == ("RUNNING", 2, 2)
    assert len(admin_revocations()) == job.counts.get("updated", 0)

    done = jobs.run_revoke_job(job.id)
    again = jobs.run_revoke_job(job.id)

    assert (done.status, done.done, done.counts) == (
        "DONE",
        4,
        {"updated": 3, "already_revoked": 1},
    )
    assert again.counts == done.counts
    assert admin_revocations() == [(f"j{n}@example.com", "UPDATED", "sam") for n in range(3)]


def test_a_job_revokes_what_was_selected_not_what_the_filter_matches_later(selection):
    job = jobs.start_revoke_job(MarketingConsent.objects.filter(address="j0@example.com"), STAFF)
    make("j0@example.com", OPT_OUT)  # revoked meanwhile
    later = make("j9@example.com")

    done = jobs.run_revoke_job(job.id)

    assert done.counts == {"already_revoked": 1}
    later.refresh_from_db()
    assert later.state == "CONFIRMED"


def test_the_sweep_queues_again_only_jobs_without_recent_progress(selection, settings):
    settings.REVOKE_JOB_STALLED_SECONDS = 60
    stalled = jobs.start_revoke_job(MarketingConsent.objects.all(), STAFF)
    RevokeJob.objects.filter(id=stalled.id).update(updated_at=timezone.now() - timedelta(minutes=5))
    jobs.start_revoke_job(MarketingConsent.objects.all(), STAFF)  # just queued
    finished = jobs.start_revoke_job(MarketingConsent.objects.none(), STAFF)
    jobs.run_revoke_job(finished.id)
    RevokeJob.objects.filter(id=finished.id).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )

    with mock.patch.object(tasks.run_revoke_job, "delay") as queued:
        tasks.sweep_revoke_jobs()
        tasks.sweep_revoke_jobs()  # marked as seen: not queued twice

    queued.assert_called_once_with(stalled.id)


def test_a_job_the_broker_refuses_is_still_recorded_for_the_sweep(
    admin_client, selection, settings
):
    settings.REVOKE_IN_REQUEST_MAX = 3
    with mock.patch.object(tasks.run_revoke_job, "delay", side_effect=ConnectionError):
        response = revoke_all(admin_client)

    assert response.status_code == 200
    assert RevokeJob.objects.get().status == "QUEUED"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_loses_no_revocation_and_repeats_none(tmp_path):
    MarketingConsent.objects.bulk_create(MarketingConsentFactory.build_batch(3000), batch_size=1000)
    job = jobs.start_revoke_job(MarketingConsent.objects.all(), STAFF)
    worker_settings = {
        "REVOKE_JOB_BATCH_SIZE": "25",
        "REVOKE_JOB_SWEEP_SECONDS": "1",
        "REVOKE_JOB_STALLED_SECONDS": "2",
    }
    worker = start_worker(tmp_path, **worker_settings)
    try:
        tasks.run_revoke_job.delay(job.id)
        wait_until(lambda: RevokeJob.objects.get().done >= 200, "the first batches")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        job.refresh_from_db()
        assert job.status == "RUNNING"
        assert job.done < 3000

        worker = start_worker(tmp_path, **worker_settings)
        wait_until(lambda: RevokeJob.objects.get().status == "DONE", "the job finished")
    finally:
        stop(worker)

    job.refresh_from_db()
    assert (job.done, job.counts) == (3000, {"updated": 3000})
    assert not MarketingConsent.objects.exclude(state="REVOKED").exists()
    events = ConsentEvent.objects.filter(door="ADMIN", kind="UPDATED")
    assert events.count() == 3000
    assert events.values("consent_id").distinct().count() == 3000
