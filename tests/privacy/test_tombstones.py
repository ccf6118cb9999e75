"""Tombstones: an erased address keeps its opt-out under a keyed hash, and every door finds it.

An older or equal-dated confirmation never re-subscribes an erased address; a newer one takes the
tombstone back to the address in clear. Each write path is tested on both databases."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from unittest import mock

import hypothesis
import pytest
from hypothesis import HealthCheck, assume
from hypothesis import strategies as st
from rest_framework.test import APIClient

from consents import ledger
from consents.addresses import erased_address
from consents.exceptions import ConsentAlreadyExists, ConsentNotFound
from consents.ledger import (
    BatchItem,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_create,
    consent_erase,
    consent_upsert,
    consent_upsert_batch,
    consent_upsert_many,
    locking,
)
from consents.links import consent_link
from consents.models import ClientApiKey, ConsentEvent, MarketingConsent
from tests.consents.test_ledger_pg import CLOCK, changes, is_valid, outcome
from tests.factories import (
    ConsentEventFactory,
    MarketingConsentFactory,
    MemberFactory,
    MemberSessionFactory,
)

pytestmark = pytest.mark.django_db

API = "/marketing-consent/v1"
ADDRESS = "ada@example.com"
TOMBSTONE = erased_address(ADDRESS)
CONTEXT = ChangeContext(door="CONSENT_API", actor="crm", ip_address="203.0.113.9")
SIGNED_UP = datetime(2025, 1, 10, tzinfo=UTC)
ERASED_AT = datetime(2025, 6, 1, tzinfo=UTC)
BEFORE_ERASURE = datetime(2025, 3, 1, tzinfo=UTC)
AFTER_ERASURE = datetime(2025, 6, 2, tzinfo=UTC)


def confirmation(date: datetime, state: str = "CONFIRMED") -> ConsentChange:
    return ConsentChange(
        state=state,
        confirmation=ConfirmationActivity(
            source="FORM", updated_date=date, opt_in_level="SINGLE_CONFIRMATION"
        ),
    )


@pytest.fixture
def erased() -> MarketingConsent:
    """Ada's confirmed email consent, erased on ERASED_AT."""
    consent_upsert(type="EMAIL", address=ADDRESS, change=confirmation(SIGNED_UP), context=CONTEXT)
    with mock.patch("django.utils.timezone.now", return_value=ERASED_AT):
        consent_erase(
            type="EMAIL",
            address=ADDRESS,
            context=ChangeContext(door="ADMIN", actor="dpo", note="Erasure request #1"),
        )
    return MarketingConsent.objects.get()


def upsert(address: str, change: ConsentChange) -> None:
    consent_upsert(type="EMAIL", address=address, change=change, context=CONTEXT)


def python_path(address: str, change: ConsentChange) -> None:
    locking.upsert_with_lock("EMAIL", address.strip().lower(), change, CONTEXT, None)


def batch(address: str, change: ConsentChange) -> None:
    [result] = consent_upsert_batch(items=[BatchItem("EMAIL", address, change)], context=CONTEXT)
    assert not isinstance(result, Exception), result


def many(address: str, change: ConsentChange) -> None:
    """The bulk commands' path: the set-based merge on PostgreSQL."""
    [outcome] = consent_upsert_many(items=[BatchItem("EMAIL", address, change)], context=CONTEXT)
    assert outcome.address == address.strip().lower()  # reported as sent, never as the hash


WRITE_PATHS: dict[str, Callable[[str, ConsentChange], None]] = {
    "upsert": upsert,
    "python path": python_path,
    "batch": batch,
    "many": many,
}


def stored() -> list[tuple[str, str, str]]:
    return list(MarketingConsent.objects.values_list("address", "state", "id"))


@pytest.mark.parametrize("write", WRITE_PATHS.values(), ids=WRITE_PATHS.keys())
@pytest.mark.parametrize("date", [BEFORE_ERASURE, ERASED_AT], ids=["older", "equal"])
@pytest.mark.parametrize("state", ["CONFIRMED", "PENDING"])
def test_a_confirmation_not_newer_than_the_erasure_is_superseded(erased, write, date, state):
    write(" Ada@Example.COM ", confirmation(date, state))

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]
    event = ConsentEvent.objects.first()
    assert (event.kind, event.address, event.state) == ("SUPERSEDED", TOMBSTONE, "REVOKED")
    assert not ConsentEvent.objects.filter(address=ADDRESS).exists()


@pytest.mark.parametrize("write", WRITE_PATHS.values(), ids=WRITE_PATHS.keys())
def test_a_newer_confirmation_brings_the_address_back_in_clear(erased, write):
    write("ADA@example.com", confirmation(AFTER_ERASURE))

    assert stored() == [(ADDRESS, "CONFIRMED", erased.id)]
    consent = MarketingConsent.objects.get()
    assert (consent.revision, consent.confirmation_date) == (erased.revision + 1, AFTER_ERASURE)
    event = ConsentEvent.objects.first()
    assert (event.kind, event.address, event.previous_state, event.state) == (
        "UPDATED",
        ADDRESS,
        "REVOKED",
        "CONFIRMED",
    )


@pytest.mark.parametrize("write", WRITE_PATHS.values(), ids=WRITE_PATHS.keys())
def test_a_newer_opt_out_keeps_the_tombstone(erased, write):
    change = ConsentChange(
        state="REVOKED", revoke=RevokeActivity(source="FORM", updated_date=AFTER_ERASURE)
    )

    write(ADDRESS, change)

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]
    consent = MarketingConsent.objects.get()
    assert (consent.revoke_date, consent.revision) == (AFTER_ERASURE, erased.revision + 1)
    assert not ConsentEvent.objects.filter(address=ADDRESS).exists()


def test_the_upsert_answers_under_the_address_sent_never_the_hash(erased):
    result = consent_upsert(
        type="EMAIL", address=ADDRESS, change=confirmation(BEFORE_ERASURE), context=CONTEXT
    )

    assert (result.kind, result.consent.address, result.consent.state) == (
        "SUPERSEDED",
        ADDRESS,
        "REVOKED",
    )
    assert MarketingConsent.objects.get().address == TOMBSTONE


def test_create_finds_the_tombstone_as_an_existing_consent(erased):
    with pytest.raises(ConsentAlreadyExists):
        consent_create(
            type="EMAIL",
            address=ADDRESS,
            confirmation=ConfirmationActivity(source="FORM", updated_date=AFTER_ERASURE),
            context=CONTEXT,
        )

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


@pytest.mark.parametrize(
    "call",
    [
        lambda consent_id: ledger.consent_update(
            consent_id=consent_id, change=confirmation(AFTER_ERASURE), context=CONTEXT
        ),
        lambda consent_id: ledger.consent_delete(consent_id=consent_id, context=CONTEXT),
        lambda consent_id: ledger.consent_revoke_by_link(consent_id=consent_id, context=CONTEXT),
    ],
    ids=["update", "delete", "revoke by link"],
)
def test_a_tombstone_is_not_found_by_id(erased, call):
    with pytest.raises(ConsentNotFound):
        call(erased.id)

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def test_an_address_is_erased_without_a_consent_too(db):
    """Erasure leaves an opt-out even where there was no consent, so that an older opt-in
    arriving later cannot subscribe the address."""
    consent_erase(type="PHONE", address="+1 415 555 0123", context=CONTEXT)

    upsert_phone = ConsentChange(
        state="CONFIRMED", confirmation=ConfirmationActivity(updated_date=BEFORE_ERASURE)
    )
    consent_upsert(type="PHONE", address="(415) 555-0123", change=upsert_phone, context=CONTEXT)

    assert list(MarketingConsent.objects.values_list("type", "address", "state")) == [
        ("PHONE", erased_address("+14155550123"), "REVOKED")
    ]


def test_the_hash_needs_the_key(settings):
    plain = erased_address(ADDRESS)
    settings.ERASURE_HASH_KEY = "another-key"

    assert erased_address(ADDRESS) != plain
    assert plain.startswith("erased:") and ADDRESS not in plain


# --- doors -------------------------------------------------------------------------------------


def csv_import(tmp_path, run_command, date: str) -> str:
    path = tmp_path / "in.csv"
    path.write_text(
        "type,address,state,source,opt_in_level,description,date\n"
        f"EMAIL,Ada@Example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,Old list,{date}\n",
        encoding="utf-8",
    )
    return run_command("import_consents", str(path), "--apply").stdout


def test_import_of_an_old_opt_in_leaves_an_erased_address_revoked(erased, tmp_path, run_command):
    output = csv_import(tmp_path, run_command, "2025-03-01T00:00:00Z")

    assert "superseded: 1" in output
    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def test_import_of_a_newer_opt_in_subscribes_the_address_again(erased, tmp_path, run_command):
    output = csv_import(tmp_path, run_command, "2025-06-02T00:00:00Z")

    assert "updated: 1" in output
    assert stored() == [(ADDRESS, "CONFIRMED", erased.id)]


def test_revoke_consents_keeps_the_tombstone(erased, tmp_path, run_command):
    path = tmp_path / "list.txt"
    path.write_text("Ada@Example.com\n", encoding="utf-8")

    run_command("revoke_consents", "--emails-from", str(path), "--reason", "Complaint", "--apply")

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def api_body(date: str) -> dict:
    return {
        "marketingConsent": {
            "details": {"type": "EMAIL", "email": "Ada@Example.com"},
            "state": "CONFIRMED",
            "lastConfirmationActivity": {"source": "FORM", "updatedDate": date},
        }
    }


def test_consent_api_upsert_of_an_old_opt_in_answers_revoked_without_the_hash(
    erased, api_client: APIClient
):
    response = api_client.post(
        f"{API}/marketing-consent/upsert", api_body("2025-03-01T00:00:00Z"), format="json"
    )

    assert response.status_code == 200
    consent = response.json()["marketingConsent"]
    assert (consent["details"], consent["state"]) == (
        {"type": "EMAIL", "email": ADDRESS},
        "REVOKED",
    )
    assert "erased" not in response.content.decode()
    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def test_consent_api_bulk_upsert_honours_the_tombstone(erased, api_client: APIClient):
    response = api_client.post(
        f"{API}/bulk/marketing-consent/upsert",
        {"info": [api_body("2025-03-01T00:00:00Z")], "returnEntity": True},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["results"][0]["marketingConsent"]["state"] == "REVOKED"
    assert "erased" not in response.content.decode()
    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def test_consent_api_create_answers_conflict(erased, api_client: APIClient):
    body = api_body("2025-06-02T00:00:00Z")

    response = api_client.post(f"{API}/marketing-consent", body, format="json")

    assert response.status_code == 409
    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def test_get_by_an_erased_address_answers_not_eligible_and_nothing_else(
    erased, api_client: APIClient
):
    response = api_client.get(
        f"{API}/marketing-consent/get-by", {"type": "EMAIL", "email": "ADA@example.com"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "communicationEligibility": {"granted": False, "reason": "CONSENT_REVOKED"}
    }


def test_get_query_update_and_delete_through_the_api_never_find_a_tombstone(
    erased, api_client: APIClient
):
    url = f"{API}/marketing-consent/{erased.id}"

    assert api_client.get(url).status_code == 404
    assert api_client.patch(url, {"marketingConsent": {}}, format="json").status_code == 404
    assert api_client.delete(url).status_code == 404
    query = api_client.post(f"{API}/marketing-consent/query", {"query": {}}, format="json")
    assert query.json()["marketingConsent"] == []
    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]


def member_put(api_client: APIClient, api_key: ClientApiKey, preference: str) -> int:
    member = MemberFactory(email=ADDRESS, phone="")
    MemberSessionFactory(correlation_id="corr-new", member=member, api_key=api_key)
    response = api_client.put(
        "/client/users/corr-new/profile/marketing-subscription",
        {"email": {"preference": preference}},
        format="json",
    )
    return response.status_code


def test_member_put_opt_out_keeps_the_tombstone_and_shows_opted_out(erased, api_client, api_key):
    assert member_put(api_client, api_key, "OPT_OUT") == 200

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]
    response = api_client.get("/client/users/corr-new/profile/marketing-preferences")
    assert response.json()["EMAIL"]["LOYALTY"]["status"] == "OPTED_OUT"


def test_member_put_opt_in_is_the_persons_new_confirmation(
    erased, api_client: APIClient, api_key: ClientApiKey
):
    assert member_put(api_client, api_key, "OPT_IN") == 200

    assert stored() == [(ADDRESS, "CONFIRMED", erased.id)]


# --- the PostgreSQL statements give what the Python path gives --------------------------------


@pytest.mark.postgres
@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@hypothesis.given(sequence=st.lists(changes, max_size=5))
def test_on_a_tombstone_each_path_gives_what_the_python_path_gives(sequence):
    assume(all(is_valid(change) for change in sequence))
    token = uuid.uuid4().hex[:12]
    fast, merged, slow = (f"{name}{token}@example.com" for name in ("fast", "merged", "slow"))
    with mock.patch("django.utils.timezone.now", return_value=CLOCK):
        for address in (fast, merged, slow):
            consent_erase(type="EMAIL", address=address, context=CONTEXT)
    for step, change in enumerate(sequence):
        moment = CLOCK + timedelta(seconds=step + 1)
        with mock.patch("django.utils.timezone.now", return_value=moment):
            one = consent_upsert(type="EMAIL", address=fast, change=change, context=CONTEXT)
            [outcome_many] = consent_upsert_many(
                items=[BatchItem("EMAIL", merged, change)], context=CONTEXT
            )
            python = locking.upsert_with_lock("EMAIL", slow, change, CONTEXT, None)
        assert outcome(one, fast) == outcome(python, slow), (step, change)
        assert (outcome_many.kind, outcome_many.state) == (python.kind, python.consent.state)
        erased_now = [
            MarketingConsent.objects.filter(address=erased_address(address)).exists()
            for address in (fast, merged, slow)
        ]
        assert erased_now in ([True] * 3, [False] * 3), (step, change)


def test_a_link_to_an_erased_consent_is_no_longer_valid(client):
    consent_upsert(type="EMAIL", address=ADDRESS, change=confirmation(SIGNED_UP), context=CONTEXT)
    url = consent_link(MarketingConsent.objects.get())["url"]
    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)
    path = url.removeprefix("http://127.0.0.1:8000")

    page = client.get(path)
    one_click = client.post(path, {"List-Unsubscribe": "One-Click"})

    assert "This link is no longer valid." in page.content.decode()
    assert one_click.status_code >= 400
    assert MarketingConsent.objects.get().address == TOMBSTONE
    assert ConsentEvent.objects.first().kind == "ERASED"


def test_erasure_merges_a_tombstone_and_a_consent_stored_side_by_side(db):
    """Rows written around the ledger may hold both spellings: erasure leaves one tombstone."""
    MarketingConsentFactory(address=TOMBSTONE, state="REVOKED", revoke_date=SIGNED_UP)
    MarketingConsentFactory(address=ADDRESS)

    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)

    assert list(MarketingConsent.objects.values_list("address", "state")) == [
        (TOMBSTONE, "REVOKED")
    ]


def test_normalize_addresses_merges_a_legacy_spelling_into_the_tombstone(erased, run_command):
    """A row stored around the ledger under another spelling of an erased address, with an
    older opt-in, gives way to the tombstone and loses its personal data."""
    legacy = MarketingConsentFactory(address=" Ada@EXAMPLE.com", confirmation_date=SIGNED_UP)
    ConsentEventFactory(consent=legacy, ip_address="203.0.113.9", note="Signed up in store")

    run_command("normalize_addresses", "--apply")

    assert stored() == [(TOMBSTONE, "REVOKED", erased.id)]
    # The address in any spelling (not "ada" alone: ids and hashes are hexadecimal).
    assert not ConsentEvent.objects.filter(address__icontains="ada@example").exists()
    assert not ConsentEvent.objects.filter(note__icontains="ada@example").exists()
    assert not ConsentEvent.objects.exclude(ip_address=None).exists()
    assert ConsentEvent.objects.filter(consent_id=legacy.id, kind="DELETED").exists()
