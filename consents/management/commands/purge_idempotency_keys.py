"""Delete idempotency records past their time to live."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from consents.models import IdempotencyRecord


class Command(BaseCommand):
    help = "Delete stored idempotency-key responses older than IDEMPOTENCY_TTL (run it daily)."

    def handle(self, *args: object, **options: object) -> None:
        deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
        self.stdout.write(f"Deleted {deleted} expired idempotency records.")
