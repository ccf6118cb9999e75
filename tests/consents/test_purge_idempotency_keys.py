from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from consents.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_purge_deletes_only_expired_records(capsys):
    now = timezone.now()
    for key, expires_at in [("old", now - timedelta(seconds=1)), ("new", now + timedelta(hours=1))]:
        IdempotencyRecord.objects.create(
            api_key_id="k", key=key, fingerprint="f", expires_at=expires_at
        )

    call_command("purge_idempotency_keys")

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert capsys.readouterr().out == "Deleted 1 expired idempotency records.\n"
