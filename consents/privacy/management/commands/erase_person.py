"""manage.py erase_person: forget a person and keep their opt-out (docs/privacy.md)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consents.addresses import mask_address
from consents.ledger import ChangeContext
from consents.models import Door
from consents.privacy.erasure import erase_person
from consents.privacy.management.person_options import add_person_options, person_from


class Command(BaseCommand):
    help = (
        "Erase a person: their member records lose every personal field, each of their "
        "addresses keeps only a REVOKED tombstone under a keyed hash, and the proof events lose "
        "addresses, IP addresses, user agents and free text. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_person_options(parser)
        parser.add_argument(
            "--reason",
            required=True,
            help="Why (e.g. the request's reference); recorded on the erasure. No personal data.",
        )
        parser.add_argument("--apply", action="store_true", help="Erase (default: dry run).")

    def handle(self, *args: object, **options: Any) -> None:
        person = person_from(options)
        members = ", ".join(str(member.account_id) for member in person.members) or "none"
        addresses = ", ".join(f"{t} {mask_address(a)}" for t, a in person.addresses) or "none"
        self.stdout.write(f"Members: {members}\nAddresses: {addresses}")
        if not options["apply"]:
            self.stdout.write("DRY RUN — nothing was erased. Run again with --apply to erase.")
            return
        context = ChangeContext(door=Door.COMMAND, actor="erase_person", note=options["reason"])
        erasure = erase_person(person, context=context)
        self.stdout.write(
            f"Erased: {len(erasure.member_account_ids)} member(s), "
            f"{len(erasure.consent_ids)} address(es); erasure record {erasure.pk}."
        )
