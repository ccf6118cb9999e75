"""A person, as a privacy request names them: by an email address, a phone number or a member
id; and everything that belongs to them: the members with those details and the addresses."""

import uuid
from dataclasses import dataclass

from django.db.models import Q

from consents.addresses import ERASED_PREFIX, normalize_email, normalize_phone
from consents.models import ConsentEvent, ConsentType, Door
from members.models import Member


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
        members = Member.objects.filter(email=scope["email"])
        addresses.add((ConsentType.EMAIL, scope["email"]))
    elif phone:
        scope = {"phone": normalize_phone(phone)}
        members = Member.objects.filter(phone=scope["phone"])
        addresses.add((ConsentType.PHONE, scope["phone"]))
    else:
        scope = {"member": member}
        members = Member.objects.filter(_member_ids(member))
        if not members.exists():
            raise PersonNotFound(f"No member has the id {member!r}.")
    found = tuple(members.order_by("id"))
    for one in found:
        if one.email:
            addresses.add((ConsentType.EMAIL, one.email))
        if one.phone:
            addresses.add((ConsentType.PHONE, one.phone))
    # Addresses the members had before, that they set preferences for through the member API.
    earlier = ConsentEvent.objects.filter(
        door=Door.MEMBER_API, actor__in=[str(one.account_id) for one in found]
    ).exclude(address__startswith=ERASED_PREFIX)
    addresses.update(earlier.values_list("type", "address").distinct())
    return Person(scope=scope, members=found, addresses=tuple(sorted(addresses)))


def _member_ids(member: str) -> Q:
    ids = Q(loyalty_id=member) | Q(external_id=member)
    try:
        return ids | Q(account_id=uuid.UUID(member))
    except ValueError:
        return ids
