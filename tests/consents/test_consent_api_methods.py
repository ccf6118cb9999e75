"""Create, get, get-by, update, remove and delete; the errors every method shares; and the
points where the source platform's own clients would break on a small difference."""

import uuid

import pytest
from django.conf import settings

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.conftest import API, application_error, confirmed, revoked, violation
from tests.factories import ClientApiKeyFactory

pytestmark = pytest.mark.django_db

CONSENTS = f"{API}/marketing-consent"


@pytest.fixture
def consent(upsert) -> dict:
    return upsert(confirmed("sam@example.com"))


# --- create ------------------------------------------------------------------------------------


def test_create_makes_a_confirmed_consent_with_status_200(api_client):
    body = confirmed("new@example.com")
    del body["state"]

    response = api_client.post(CONSENTS, {"marketingConsent": body}, format="json")

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "CONFIRMED"
    assert response.json()["link"]["type"] == "REVOKE_CONFIRMATION"
    assert ConsentEvent.objects.get().kind == "CREATED"


def test_create_for_an_address_that_has_a_consent_is_a_conflict(api_client, consent):
    response = api_client.post(
        CONSENTS, {"marketingConsent": confirmed("SAM@example.com")}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == application_error(
        "A consent for this email already exists.", "ALREADY_EXISTS"
    )
    assert ConsentEvent.objects.count() == 1


def test_create_needs_a_confirmation_activity(api_client):
    body = {"details": {"type": "EMAIL", "email": "n@example.com"}}

    response = api_client.post(CONSENTS, {"marketingConsent": body}, format="json")

    assert response.json() == violation(
        "marketingConsent.lastConfirmationActivity",
        "Required when the state is CONFIRMED.",
        "REQUIRED_FIELD",
    )


@pytest.mark.parametrize("state", ["PENDING", "REVOKED", "UNKNOWN_STATE", "NO_SUCH_STATE", None])
def test_create_ignores_the_state_sent_and_makes_a_confirmed_consent(api_client, state):
    body = {**confirmed("n@example.com"), "state": state}

    response = api_client.post(CONSENTS, {"marketingConsent": body}, format="json")

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "CONFIRMED"
    assert MarketingConsent.objects.get().state == "CONFIRMED"


def test_create_with_another_state_still_needs_a_confirmation_activity(api_client):
    response = api_client.post(
        CONSENTS, {"marketingConsent": revoked("n@example.com")}, format="json"
    )

    assert response.json() == violation(
        "marketingConsent.lastConfirmationActivity",
        "Required when the state is CONFIRMED.",
        "REQUIRED_FIELD",
    )
    assert not MarketingConsent.objects.exists()


# --- get and get-by ----------------------------------------------------------------------------


def test_get_returns_the_consent_without_a_link(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = api_client.get(f"{CONSENTS}/{consent_id}")

    assert response.status_code == 200
    assert response.json() == {"marketingConsent": consent.json()["marketingConsent"]}


@pytest.mark.parametrize("consent_id", ["3f2c6f0e-8d5b-4a7e-9c1d-2b4e6a8f0c13", "not-a-uuid"])
def test_get_of_an_unknown_id_is_404(api_client, consent_id):
    response = api_client.get(f"{CONSENTS}/{consent_id}")

    assert response.status_code == 404
    assert response.json() == application_error("Marketing consent not found.", "NOT_FOUND")


@pytest.mark.parametrize(
    ("state_body", "granted", "reason"),
    [
        (confirmed("e@example.com"), True, "CONFIRMED_CONSENT"),
        (revoked("e@example.com"), False, "CONSENT_REVOKED"),
        (
            {"details": {"type": "EMAIL", "email": "e@example.com"}, "state": "NEVER_CONFIRMED"},
            True,
            "NO_CONSENT_REQUIRED",
        ),
    ],
)
def test_get_by_tells_whether_marketing_may_be_sent(
    api_client, upsert, state_body, granted, reason
):
    upsert(state_body)

    response = api_client.get(f"{CONSENTS}/get-by", {"type": "EMAIL", "email": "E@Example.com"})

    assert response.status_code == 200
    eligibility = response.json()["communicationEligibility"]
    assert (eligibility["granted"], eligibility["reason"]) == (granted, reason)
    assert response.json()["marketingConsent"]["details"]["email"] == "e@example.com"
    assert ("revokeConfirmationLink" in eligibility) is (reason == "CONFIRMED_CONSENT")


def test_get_by_for_a_phone_without_consent_is_not_granted(api_client):
    response = api_client.get(
        f"{CONSENTS}/get-by", {"details.type": "PHONE", "details.phone": "+1 415 555 0100"}
    )

    assert response.json() == {
        "communicationEligibility": {"granted": False, "reason": "NO_CONSENT"}
    }


def test_get_by_with_a_bad_address_is_a_field_violation(api_client):
    response = api_client.get(f"{CONSENTS}/get-by", {"type": "PHONE", "phone": "12"})

    assert response.json() == violation("phone", "'12' is not a valid phone number.", "FORMAT")


# --- update ------------------------------------------------------------------------------------


def patch(api_client, consent_id: str, body: dict):
    return api_client.patch(f"{CONSENTS}/{consent_id}", body, format="json")


REVOKE = {"state": "REVOKED", "lastRevokeActivity": {"source": "FORM", "description": "asked"}}


@pytest.mark.parametrize(
    "mask",
    [
        {"fieldMask": {"paths": ["state", "lastRevokeActivity"]}},
        {"mask": "state,lastRevokeActivity"},
        {},
    ],
)
def test_update_takes_a_field_mask_a_mask_string_or_none(api_client, consent, mask):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(
        api_client, consent_id, {"marketingConsent": {"id": consent_id, **REVOKE}, **mask}
    )

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "REVOKED"
    assert response.json()["marketingConsent"]["revision"] == "2"


def test_update_changes_only_what_the_mask_names(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]
    body = {
        "marketingConsent": {**REVOKE, "extendedFields": {"namespaces": {"a": {"b": "c"}}}},
        "fieldMask": {"paths": ["extendedFields"]},
    }

    response = patch(api_client, consent_id, body)

    assert response.json()["marketingConsent"]["state"] == "CONFIRMED"
    assert response.json()["marketingConsent"]["extendedFields"] == {
        "namespaces": {"a": {"b": "c"}}
    }


def test_update_at_the_stored_revision_applies(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(api_client, consent_id, {"marketingConsent": {"revision": "1", **REVOKE}})

    assert response.json()["marketingConsent"]["revision"] == "2"


def test_update_at_another_revision_is_a_conflict_and_changes_nothing(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(api_client, consent_id, {"marketingConsent": {"revision": 7, **REVOKE}})

    assert response.status_code == 409
    assert response.json() == application_error(
        "The consent is at revision 1, not 7.", "REVISION_MISMATCH"
    )
    assert MarketingConsent.objects.get().state == "CONFIRMED"
    assert ConsentEvent.objects.count() == 1


def test_update_with_another_id_in_the_body_is_refused(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(
        api_client, consent_id, {"marketingConsent": {"id": str(uuid.uuid4()), **REVOKE}}
    )

    assert response.json() == violation(
        "marketingConsent.id", "It is not the id in the URL.", "FORMAT"
    )


def test_update_refuses_a_path_that_cannot_be_updated(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(api_client, consent_id, {"marketingConsent": REVOKE, "mask": "state,details"})

    [found] = response.json()["details"]["validationError"]["fieldViolations"]
    assert (found["field"], found["violatedRule"]) == ("mask", "INVALID_ENUM_VALUE")


def test_update_to_revoked_needs_the_revoke_activity(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = patch(api_client, consent_id, {"marketingConsent": {"state": "REVOKED"}})

    assert response.json() == violation(
        "marketingConsent.lastRevokeActivity",
        "Required when the state is REVOKED.",
        "REQUIRED_FIELD",
    )


def test_update_of_an_unknown_consent_is_404(api_client):
    response = patch(api_client, str(uuid.uuid4()), {"marketingConsent": REVOKE})

    assert response.status_code == 404


# --- remove and delete -------------------------------------------------------------------------


def test_remove_revokes_and_keeps_the_record(api_client, consent):
    body = {
        "details": {"type": "EMAIL", "email": "sam@example.com"},
        "lastRevokeActivity": {"source": "FORM", "description": "Unsubscribed at checkout."},
    }

    response = api_client.post(f"{CONSENTS}/remove", body, format="json")

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "REVOKED"
    assert response.json()["marketingConsent"]["lastRevokeActivity"]["description"] == (
        "Unsubscribed at checkout."
    )
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_remove_of_an_unknown_address_records_it_as_revoked(api_client):
    body = {"details": {"type": "EMAIL", "email": "never@example.com"}, "lastRevokeActivity": {}}

    response = api_client.post(f"{CONSENTS}/remove", body, format="json")

    assert response.json()["marketingConsent"]["state"] == "REVOKED"


def test_remove_needs_the_revoke_activity(api_client):
    body = {"details": {"type": "EMAIL", "email": "x@example.com"}}

    response = api_client.post(f"{CONSENTS}/remove", body, format="json")

    assert response.json() == violation(
        "lastRevokeActivity", "This field is required.", "REQUIRED_FIELD"
    )


def test_delete_answers_an_empty_object_and_keeps_the_proof(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = api_client.delete(f"{CONSENTS}/{consent_id}")

    assert (response.status_code, response.json()) == (200, {})
    assert not MarketingConsent.objects.exists()
    assert list(ConsentEvent.objects.order_by("id").values_list("kind", "consent_id")) == [
        ("CREATED", uuid.UUID(consent_id)),
        ("DELETED", uuid.UUID(consent_id)),
    ]
    assert api_client.delete(f"{CONSENTS}/{consent_id}").status_code == 404


# --- errors every method shares ----------------------------------------------------------------


def test_no_api_key_is_401(client):
    response = client.get(f"{CONSENTS}/get-by", {"type": "EMAIL", "email": "a@example.com"})

    assert response.status_code == 401
    assert response.json() == application_error(
        "Authentication credentials were not provided.", "UNAUTHENTICATED"
    )


def test_a_wrong_api_key_is_401(client):
    response = client.get(f"{CONSENTS}/{uuid.uuid4()}", HTTP_AUTHORIZATION="Api-Key abc.def")

    assert response.json() == application_error("The API key is not valid.", "UNAUTHENTICATED")


def test_malformed_json_is_400_in_the_platform_shape(api_client):
    response = api_client.post(f"{CONSENTS}/upsert", "{oops", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["details"]["applicationError"]["code"] == "INVALID_ARGUMENT"


def test_a_body_that_is_not_an_object_is_400(upsert):
    response = upsert(["not", "an", "object"])

    assert response.status_code == 400
    assert "validationError" in response.json()["details"]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/xml"])
def test_a_wrong_content_type_is_415(api_client, content_type):
    body = '{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "NEVER_CONFIRMED"}'

    response = api_client.post(f"{CONSENTS}/upsert", body, content_type=content_type)

    assert response.status_code == 415
    assert response.json() == application_error(
        f'Unsupported media type "{content_type}" in request.', "UNSUPPORTED_MEDIA_TYPE"
    )
    assert not MarketingConsent.objects.exists()


@pytest.mark.parametrize(
    "content_type", ["", "application/x-www-form-urlencoded", "application/merge-patch+json"]
)
def test_a_json_body_without_a_json_content_type_is_read_as_json(api_client, content_type):
    body = '{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "NEVER_CONFIRMED"}'

    response = api_client.generic("POST", f"{CONSENTS}/upsert", body, content_type=content_type)

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "NEVER_CONFIRMED"


def test_a_form_typed_body_that_is_not_json_is_a_400(api_client):
    response = api_client.post(
        f"{CONSENTS}/upsert", "state=CONFIRMED", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert response.json()["details"]["applicationError"]["code"] == "INVALID_ARGUMENT"
    assert response.json()["message"].startswith("JSON parse error")
    assert not MarketingConsent.objects.exists()


def test_a_wrong_method_is_405(api_client):
    response = api_client.put(f"{CONSENTS}/upsert", {}, format="json")

    assert response.status_code == 405
    assert response.json() == application_error('Method "PUT" not allowed.', "METHOD_NOT_ALLOWED")


def test_an_unknown_url_is_404_in_the_platform_shape(api_client):
    response = api_client.get(f"{API}/marketing-consents")

    assert response.status_code == 404
    assert response.json() == application_error("No such endpoint.", "NOT_FOUND")


# --- the source platform's own clients ---------------------------------------------------------


def test_the_bare_key_authenticates_as_the_platforms_clients_send_it(client):
    key = ClientApiKeyFactory(name="wix-sdk")

    response = client.post(
        f"{CONSENTS}/upsert",
        confirmed("sdk@example.com"),
        content_type="application/json",
        HTTP_AUTHORIZATION=key.clear_key,
    )

    assert response.status_code == 200
    assert ConsentEvent.objects.get().actor == "wix-sdk"


def test_unknown_headers_and_query_parameters_are_ignored(api_client):
    response = api_client.post(
        f"{CONSENTS}/upsert?fields=all&debug=1",
        confirmed("h@example.com"),
        format="json",
        HTTP_WIX_SITE_ID="abc",
        HTTP_X_WIX_REQUEST_ID="r1",
        HTTP_ACCEPT="text/html",
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


# --- the platform's client types ---------------------------------------------------------------


def test_get_by_gives_the_revoke_confirmation_link_as_the_unsubscribe_url(api_client, consent):
    response = api_client.get(f"{CONSENTS}/get-by", {"type": "EMAIL", "email": "sam@example.com"})

    link = response.json()["communicationEligibility"]["revokeConfirmationLink"]
    assert isinstance(link, str)
    assert link.startswith(f"{settings.PUBLIC_BASE_URL}/_manage-consent/unsubscribe?token=")


def without_description(activity: dict) -> dict:
    return {**activity, "description": None}


@pytest.mark.parametrize(
    ("method", "path", "body", "activity"),
    [
        (
            "post",
            "upsert",
            {**confirmed("d@example.com"), "lastConfirmationActivity": {"description": None}},
            "lastConfirmationActivity",
        ),
        (
            "post",
            "",
            {
                "marketingConsent": {
                    **confirmed("d@example.com"),
                    "lastConfirmationActivity": {"source": "FORM", "description": None},
                }
            },
            "lastConfirmationActivity",
        ),
        (
            "post",
            "upsert",
            {**revoked("d@example.com"), "lastRevokeActivity": {"description": None}},
            "lastRevokeActivity",
        ),
        (
            "post",
            "remove",
            {
                "details": {"type": "EMAIL", "email": "d@example.com"},
                "lastRevokeActivity": {"source": "FORM", "description": None},
            },
            "lastRevokeActivity",
        ),
    ],
)
def test_a_null_description_is_accepted_and_the_activity_has_none(
    api_client, method, path, body, activity
):
    url = f"{CONSENTS}/{path}" if path else CONSENTS

    response = getattr(api_client, method)(url, body, format="json")

    assert response.status_code == 200
    sent = response.json()["marketingConsent"][activity]
    assert "description" not in sent
    consent_id = response.json()["marketingConsent"]["id"]
    assert (
        "description"
        not in api_client.get(f"{CONSENTS}/{consent_id}").json()["marketingConsent"][activity]
    )
    stored = MarketingConsent.objects.get()
    assert (stored.confirmation_description, stored.revoke_description) == ("", "")


def test_a_null_description_is_accepted_on_update(api_client, consent):
    consent_id = consent.json()["marketingConsent"]["id"]

    response = api_client.patch(
        f"{CONSENTS}/{consent_id}",
        {
            "marketingConsent": {
                "state": "REVOKED",
                "lastRevokeActivity": {"source": "FORM", "description": None},
            }
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["lastRevokeActivity"] == {
        "source": "FORM",
        "updatedDate": response.json()["marketingConsent"]["lastRevokeActivity"]["updatedDate"],
    }


def test_an_activity_without_a_description_is_shown_without_one(api_client, consent):
    assert consent.json()["marketingConsent"]["lastConfirmationActivity"] == {
        "source": "FORM",
        "updatedDate": "2024-01-01T00:00:00.000Z",
        "optInLevel": "SINGLE_CONFIRMATION",
    }
