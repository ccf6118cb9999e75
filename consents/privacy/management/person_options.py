"""The options by which the privacy commands name a person."""

from django.core.management.base import CommandError, CommandParser

from consents.exceptions import InvalidAddress
from consents.privacy.person import Person, PersonNotFound, find_person


def add_person_options(parser: CommandParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", default="", help="The person's email address, in any spelling.")
    who.add_argument("--phone", default="", help="The person's phone number, in any spelling.")
    who.add_argument(
        "--member", default="", help="A member's account id, loyalty id or external id."
    )


def person_from(options: dict) -> Person:
    try:
        return find_person(email=options["email"], phone=options["phone"], member=options["member"])
    except InvalidAddress as exc:
        raise CommandError(exc.message) from exc
    except PersonNotFound as exc:
        raise CommandError(str(exc)) from exc
