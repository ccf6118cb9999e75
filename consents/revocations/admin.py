"""Staff follow their revoke jobs here: progress, and what was done once finished."""

from __future__ import annotations

from django.contrib import admin

from consents.revocations.models import RevokeJob
from consentsite.read_only_admin import ReadOnlyAdmin


@admin.register(RevokeJob)
class RevokeJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor", "status", "progress", "result", "finished_at"]
    list_filter = ["status"]
    ordering = ["-created_at", "-id"]
    fields = [
        "created_at",
        "actor",
        "reason",
        "status",
        "progress",
        "result",
        "updated_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="Progress")
    def progress(self, job: RevokeJob) -> str:
        percent = 100 * job.done // job.total if job.total else 100
        return f"{job.done:,} of {job.total:,} ({percent}%)"

    @admin.display(description="Result")
    def result(self, job: RevokeJob) -> str:
        return job.summary if job.status == RevokeJob.Status.DONE else "—"
