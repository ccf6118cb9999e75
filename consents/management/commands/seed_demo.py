"""Demo data: members, consents in every state with their events, and a usable API key.

Idempotent: consents are written through the ledger with fixed activity dates, so a second run
records UNCHANGED events and alters nothing.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from rest_framework_api_key.crypto import KeyGenerator, concatenate

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.models import ClientApiKey, ConsentState, Door
from members.models import Member

# A fixed key makes the README's curl examples work as written. Only ever created with DEBUG on.
DEMO_KEY_PREFIX = "demo0000"
DEMO_KEY = f"{DEMO_KEY_PREFIX}.consentsite-demo-key-for-local-use-only"

MEMBERS = [
    # loyalty id, first, last, email, phone
    ("LOY-1001", "Alice", "Martin", "alice@example.com", "+14155550100"),
    ("LOY-1002", "Bruno", "Silva", "bruno@example.com", ""),
    ("LOY-1003", "Chen", "Wei", "", "+14155550102"),
    ("LOY-1004", "Dana", "Kowalski", "", ""),
    ("LOY-1005", "Emeka", "Obi", "emeka@example.com", "+14155550104"),
]


def _day(day: int) -> datetime:
    return datetime(2025, 1, day, 12, 0, tzinfo=UTC)


CONSENTS = [
    # type, address, change
    (
        "EMAIL",
        "alice@example.com",
        ConsentChange(
            state=ConsentState.CONFIRMED,
            confirmation=ConfirmationActivity(
                source="FORM",
                description="Signed up at checkout.",
                updated_date=_day(2),
                opt_in_level="SINGLE_CONFIRMATION",
            ),
        ),
    ),
    (
        "PHONE",
        "+14155550100",
        ConsentChange(
            state=ConsentState.REVOKED,
            revoke=RevokeActivity(
                source="REVOKE_LINK", description="Replied STOP.", updated_date=_day(3)
            ),
        ),
    ),
    (
        "EMAIL",
        "bruno@example.com",
        ConsentChange(
            state=ConsentState.PENDING,
            confirmation=ConfirmationActivity(
                source="FORM",
                description="Newsletter form; confirmation email sent.",
                updated_date=_day(4),
                opt_in_level="DOUBLE_CONFIRMATION",
            ),
        ),
    ),
    ("PHONE", "+14155550102", ConsentChange(state=ConsentState.NEVER_CONFIRMED)),
    ("EMAIL", "emeka@example.com", ConsentChange(state=ConsentState.UNKNOWN_STATE)),
    (
        "PHONE",
        "+14155550104",
        ConsentChange(
            state=ConsentState.CONFIRMED,
            confirmation=ConfirmationActivity(
                source="IN_PERSON",
                description="Signed the in-store form.",
                updated_date=_day(5),
                opt_in_level="SINGLE_CONFIRMATION",
            ),
        ),
    ),
]


class Command(BaseCommand):
    help = "Create demo members, consents in every state (with events) and a demo API key."

    def handle(self, *args: object, **options: object) -> None:
        for loyalty_id, first, last, email, phone in MEMBERS:
            Member.objects.update_or_create(
                loyalty_id=loyalty_id,
                defaults={"first_name": first, "last_name": last, "email": email, "phone": phone},
            )
        context = ChangeContext(door=Door.COMMAND, actor="seed_demo")
        for consent_type, address, change in CONSENTS:
            consent_upsert(type=consent_type, address=address, change=change, context=context)
        self.stdout.write(f"Demo data ready: {len(MEMBERS)} members, {len(CONSENTS)} consents.")
        self.stdout.write(f"Demo API key: {self._demo_key()}")

    def _demo_key(self) -> str:
        if not settings.DEBUG:
            # Never plant a published key in a real deployment: make a fresh one instead.
            _, key = ClientApiKey.objects.create_key(name="demo")
            return key
        hashed_key = KeyGenerator().hash(DEMO_KEY)
        ClientApiKey.objects.update_or_create(
            prefix=DEMO_KEY_PREFIX,
            defaults={
                "id": concatenate(DEMO_KEY_PREFIX, hashed_key),
                "name": "demo",
                "hashed_key": hashed_key,
                "revoked": False,
            },
        )
        return DEMO_KEY
