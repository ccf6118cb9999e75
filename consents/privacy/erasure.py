"""Erasure of a person (docs/privacy.md): forget them, keep their opt-out.

Each address becomes a tombstone through the ledger (`consent_erase`), the member rows lose their
personal fields, and what else names the person goes: their member sessions, the admin log's
names of the rows, and replayable API responses that contain one of the addresses. One `Erasure`
row records who erased whom (by ids), when and why."""

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from consents.ledger import ChangeContext, consent_erase_all
from consents.models import IdempotencyRecord, MarketingConsent
from consents.privacy.models import Erasure
from consents.privacy.person import Person
from members.models import Member, MemberSession

ERASED_NAME = "(erased)"


@transaction.atomic
def erase_person(person: Person, *, context: ChangeContext) -> Erasure:
    """Erase a person; `context.note` is the reason, recorded on the erasure and its events."""
    erased = consent_erase_all(addresses=person.addresses, context=context)
    consents = [result.consent for result in erased]
    members = list(Member.objects.select_for_update().filter(pk__in=[m.pk for m in person.members]))
    for member in members:
        member.email = member.phone = member.first_name = member.last_name = ""
        member.loyalty_id = member.external_id = None
        member.save()
    MemberSession.objects.filter(member__in=members).delete()
    _forget_names_in_the_admin_log(Member, [member.pk for member in members])
    _forget_names_in_the_admin_log(MarketingConsent, [consent.pk for consent in consents])
    _forget_replayable_responses([address for _, address in person.addresses])
    return Erasure.objects.create(
        door=context.door,
        actor=context.actor,
        reason=context.note,
        member_account_ids=[str(member.account_id) for member in members],
        consent_ids=[str(consent.pk) for consent in consents],
    )


def _forget_names_in_the_admin_log(model: type, pks: list) -> None:
    """The admin log names each row it logs by its `str()`: an address or a member's name."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model),
        object_id__in=[str(pk) for pk in pks],
    ).update(object_repr=ERASED_NAME)


def _forget_replayable_responses(addresses: list[str]) -> None:
    """Responses kept for idempotent retries (at most IDEMPOTENCY_TTL) that show an address."""
    if not addresses:
        return
    # A byte search in the database: both spell "is this in that" for binary values.
    found = (
        "position(%s in body) > 0" if connection.vendor == "postgresql" else "instr(body, %s) > 0"
    )
    showing = Q()
    for address in addresses:
        showing |= Q(RawSQL(found, (address.encode(),), output_field=BooleanField()))
    IdempotencyRecord.objects.filter(showing).delete()
