"""create_api_key and seed_demo."""

from io import StringIO

import pytest
from django.core.management import call_command

from consents.models import ClientApiKey, ConsentEvent, MarketingConsent
from members.models import Member

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_alone_on_the_last_line():
    out = StringIO()

    call_command(
        "create_api_key",
        "crm",
        "--scope",
        "read",
        "--api",
        "consent",
        stdout=out,
        stderr=StringIO(),
    )

    key = out.getvalue().splitlines()[-1]
    api_key = ClientApiKey.objects.get_from_key(key)
    assert (api_key.name, api_key.scope, api_key.api) == ("crm", "read", "consent")


def test_seed_demo_makes_members_consents_in_every_state_and_a_key(settings):
    settings.DEBUG = True
    out = StringIO()

    call_command("seed_demo", stdout=out)

    assert set(MarketingConsent.objects.values_list("state", flat=True)) == {
        "CONFIRMED",
        "REVOKED",
        "PENDING",
        "NEVER_CONFIRMED",
        "UNKNOWN_STATE",
    }
    assert Member.objects.filter(email="", phone="").exists()
    assert Member.objects.exclude(email="").exclude(phone="").exists()
    assert ConsentEvent.objects.filter(door="COMMAND", actor="seed_demo").count() == 6
    key = out.getvalue().splitlines()[-1].removeprefix("Demo API key: ")
    assert ClientApiKey.objects.get_from_key(key).name == "demo"


def test_seed_demo_twice_changes_nothing(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    revisions = dict(MarketingConsent.objects.values_list("address", "revision"))

    call_command("seed_demo", stdout=StringIO())

    assert dict(MarketingConsent.objects.values_list("address", "revision")) == revisions
    assert ConsentEvent.objects.filter(kind="UNCHANGED").count() == 6
    assert Member.objects.count() == 5
    assert ClientApiKey.objects.count() == 1


def test_seed_demo_with_debug_off_makes_a_fresh_key_not_the_published_one(settings):
    settings.DEBUG = False
    out = StringIO()

    call_command("seed_demo", stdout=out)

    key = out.getvalue().splitlines()[-1].removeprefix("Demo API key: ")
    assert not key.startswith("demo0000.")
    assert ClientApiKey.objects.get_from_key(key).name == "demo"
