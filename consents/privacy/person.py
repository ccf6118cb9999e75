"""A person, as a privacy request names them: by an email address, a phone number or a member
id; and everything that belongs to them: the members with those details and the addresses."""

from dataclasses import dataclass

from consents.addresses import normalize_email, normalize_phone
from consents.models import ConsentType
from consents.selectors import member_api_addresses
from members.models import Member
from members.selectors import members_with_address, members_with_any_id


class PersonNotFound(Exception):
    """A member id that names no member."""


@dataclass(frozen=True)
class Person:
    scope: dict[str, str]  # what the request named, normalised: {"email": …} etc.
    members: tuple[Member, ...]
    addresses: tuple[tuple[str, str], ...]  # (consent type, normalised address), sorted


def find_person(*, email: str = "", phone: str = "", member: str = "") -> Person:
    """The person named by exactly one of an email address, a phone number (any spelling; raises
    `InvalidAddress`) or a member (account id, loyalty id or external id; raises
    `PersonNotFound`). Their addresses are the one named, those of every member found, and
    those the members set preferences for through the member API before they changed them."""
    named = [value for value in (email, phone, member) if value]
    if len(named) != 1:
        raise ValueError("Name the person by exactly one of email, phone or member.")
    addresses: set[tuple[str, str]] = set()
    if email:
        scope = {"email": normalize_email(email)}
        members = members_with_address(ConsentType.EMAIL, scope["email"])
        addresses.add((ConsentType.EMAIL, scope["email"]))
    elif phone:
        scope = {"phone": normalize_phone(phone)}
        members = members_with_address(ConsentType.PHONE, scope["phone"])
        addresses.add((ConsentType.PHONE, scope["phone"]))
    else:
        scope = {"member": member}
        members = members_with_any_id(member)
    found = tuple(members)
    if member and not found:
        raise PersonNotFound(f"No member has the id {member!r}.")
    for one in found:
        if one.email:
            addresses.add((ConsentType.EMAIL, one.email))
        if one.phone:
            addresses.add((ConsentType.PHONE, one.phone))
    # Addresses the members had before, that they set preferences for through the member API.
    addresses.update(member_api_addresses([str(one.account_id) for one in found]))
    return Person(scope=scope, members=found, addresses=tuple(sorted(addresses)))
