"""PUT /client/users/<correlation_id>/profile/marketing-subscription (docs/member-api.md)."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from consents.exceptions import InvalidChange
from consents.ledger import consent_upsert
from consents.models import ClientApiKey, ConsentEvent, MarketingConsent
from members import preferences
from members.models import Channel, Member, MemberSession
from tests.factories import MemberFactory, MemberSessionFactory

URL = "/client/users/{}/profile/marketing-subscription"
UPDATED = {"message": "Marketing subscription status updated."}
EMAIL_DESCRIPTION = "Member EMAIL preference LOYALTY set through the member API (channel WEBSITE)."
SMS_DESCRIPTION = (
    "Member SMS preference shortcode 32123 set through the member API (channel WEBSITE)."
)


def put(client: APIClient, body: Any, correlation_id: str = "corr-ada", **extra: Any) -> Any:
    return client.put(URL.format(correlation_id), body, format="json", **extra)


def put_raw(
    client: APIClient,
    raw: str | bytes,
    content_type: str = "application/json",
    correlation_id: str = "corr-ada",
    **extra: Any,
) -> Any:
    return client.generic("PUT", URL.format(correlation_id), raw, content_type, **extra)


def invalid(message: str, status: int = 400, code: str = "INVALID_REQUEST") -> dict[str, Any]:
    return {"statusCode": status, "errorCode": code, "errorMessage": message}


def assert_nothing_written() -> None:
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


def consent_of(type: str, address: str) -> MarketingConsent:
    return MarketingConsent.objects.get(type=type, address=address)


pytestmark = pytest.mark.usefixtures("session")


# --- the seed's example ------------------------------------------------------------------------


def test_seed_example_opts_email_in_and_sms_out(api_client: APIClient, member: Member) -> None:
    response = put(
        api_client,
        {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}},
        HTTP_USER_AGENT="shop-web/2.1",
        HTTP_X_REQUEST_ID="req-42",
        REMOTE_ADDR="203.0.113.9",
    )

    assert response.status_code == 200
    assert response.json() == UPDATED
    email = consent_of("EMAIL", "ada@example.com")
    assert (email.state, email.revision) == ("CONFIRMED", 1)
    assert (
        email.confirmation_source,
        email.confirmation_opt_in_level,
        email.confirmation_description,
    ) == ("FORM", "SINGLE_CONFIRMATION", EMAIL_DESCRIPTION)
    assert email.confirmation_date is not None
    phone = consent_of("PHONE", "+14155550123")
    assert (phone.state, phone.revision) == ("REVOKED", 1)
    assert (phone.revoke_source, phone.revoke_description) == ("FORM", SMS_DESCRIPTION)

    events = {event.type: event for event in ConsentEvent.objects.all()}
    assert len(events) == 2
    for event, consent, activity in (
        (events["EMAIL"], email, ("FORM", EMAIL_DESCRIPTION, "SINGLE_CONFIRMATION")),
        (events["PHONE"], phone, ("FORM", SMS_DESCRIPTION, "")),
    ):
        assert event.consent_id == consent.id
        assert event.address == consent.address
        assert (event.kind, event.revision, event.previous_state, event.state) == (
            "CREATED",
            1,
            "",
            consent.state,
        )
        assert (
            event.activity_source,
            event.activity_description,
            event.activity_opt_in_level,
        ) == activity
        assert (event.door, event.actor) == ("MEMBER_API", str(member.account_id))
        assert (event.request_id, event.ip_address, event.user_agent) == (
            "req-42",
            "203.0.113.9",
            "shop-web/2.1",
        )
        assert event.note == "API key crm-sync, correlation id corr-ada"


def test_sending_only_email_leaves_the_phone_alone(api_client: APIClient) -> None:
    response = put(api_client, {"email": {"preference": "OPT_OUT"}})

    assert response.status_code == 200
    assert response.json() == UPDATED
    assert list(MarketingConsent.objects.values_list("type", "state")) == [("EMAIL", "REVOKED")]


def test_sending_only_sms_leaves_the_email_alone(api_client: APIClient) -> None:
    response = put(api_client, {"sms": {"preference": "OPT_IN"}})

    assert response.status_code == 200
    assert list(MarketingConsent.objects.values_list("type", "state")) == [("PHONE", "CONFIRMED")]
    event = ConsentEvent.objects.get()
    assert (event.kind, event.state, event.activity_opt_in_level) == (
        "CREATED",
        "CONFIRMED",
        "SINGLE_CONFIRMATION",
    )


def test_repeating_a_preference_is_an_unchanged_event_without_a_new_revision(
    api_client: APIClient,
) -> None:
    body = {"email": {"preference": "OPT_IN"}}
    put(api_client, body)
    first_date = consent_of("EMAIL", "ada@example.com").confirmation_date

    response = put(api_client, body)

    assert response.status_code == 200
    consent = consent_of("EMAIL", "ada@example.com")
    assert (consent.state, consent.revision, consent.confirmation_date) == (
        "CONFIRMED",
        1,
        first_date,
    )
    assert list(ConsentEvent.objects.order_by("id").values_list("kind", "revision")) == [
        ("CREATED", 1),
        ("UNCHANGED", 1),
    ]


def test_opting_out_after_opting_in_revokes_with_a_new_revision(api_client: APIClient) -> None:
    put(api_client, {"email": {"preference": "OPT_IN"}})

    response = put(api_client, {"email": {"preference": "OPT_OUT"}})

    assert response.status_code == 200
    consent = consent_of("EMAIL", "ada@example.com")
    assert (consent.state, consent.revision, consent.revoke_source) == ("REVOKED", 2, "FORM")
    event = ConsentEvent.objects.order_by("id").last()
    assert (event.kind, event.revision, event.previous_state, event.state) == (
        "UPDATED",
        2,
        "CONFIRMED",
        "REVOKED",
    )


def test_description_names_the_sessions_channel(
    api_client: APIClient, member: Member, api_key: ClientApiKey
) -> None:
    MemberSessionFactory(
        correlation_id="corr-app", member=member, channel=Channel.APP, api_key=api_key
    )

    put(api_client, {"email": {"preference": "OPT_IN"}}, correlation_id="corr-app")

    assert consent_of("EMAIL", "ada@example.com").confirmation_description == (
        "Member EMAIL preference LOYALTY set through the member API (channel APP)."
    )


def test_the_sms_topic_is_the_configured_shortcode(api_client: APIClient, settings) -> None:
    settings.SMS_DEFAULT_SHORTCODE = "77777"

    put(api_client, {"sms": {"preference": "OPT_IN"}})

    assert consent_of("PHONE", "+14155550123").confirmation_description == (
        "Member SMS preference shortcode 77777 set through the member API (channel WEBSITE)."
    )


def test_consent_belongs_to_the_address_shared_by_two_members(
    api_client: APIClient, api_key: ClientApiKey
) -> None:
    MemberSessionFactory(
        correlation_id="corr-twin",
        member=MemberFactory(email="ada@example.com", phone="", loyalty_id="LOY-TWIN"),
        api_key=api_key,
    )
    put(api_client, {"email": {"preference": "OPT_IN"}})

    put(api_client, {"email": {"preference": "OPT_OUT"}}, correlation_id="corr-twin")

    consent = MarketingConsent.objects.get()
    assert (consent.address, consent.state, consent.revision) == ("ada@example.com", "REVOKED", 2)


def test_put_runs_a_pinned_number_of_queries(
    api_client: APIClient, django_assert_max_num_queries
) -> None:
    body = {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}}
    put(api_client, body)  # both consents exist: the common case is an update

    # The API key 1 (its throttle block is reserved by the first PUT), the session with its
    # member 1, the transaction around both channels 2 (savepoint and release, here inside the
    # test's transaction); per channel 5: savepoint, locked read, update, event, release.
    with django_assert_max_num_queries(14):
        response = put(
            api_client, {"email": {"preference": "OPT_OUT"}, "sms": {"preference": "OPT_IN"}}
        )

    assert response.status_code == 200


# --- the source's error table: one test per row ------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_invalid_preference_option_is_rejected(api_client: APIClient, channel: str) -> None:
    response = put(api_client, {channel: {"preference": "SUBSCRIBE"}})

    assert response.status_code == 400
    assert response.json() == invalid(f"Invalid preference option sent for {channel}.")
    assert_nothing_written()


def test_invalid_communication_channel_is_rejected(api_client: APIClient) -> None:
    response = put(
        api_client, {"email": {"preference": "OPT_IN"}, "push": {"preference": "OPT_IN"}}
    )

    assert response.status_code == 400
    assert response.json() == invalid("Invalid communication channel present in the request: push.")
    assert_nothing_written()


def test_email_without_preference_is_rejected(api_client: APIClient) -> None:
    response = put(api_client, {"email": {}})

    assert response.status_code == 400
    assert response.json() == invalid("Preference for email is not sent in the request.")
    assert_nothing_written()


def test_sms_without_preference_is_rejected(api_client: APIClient) -> None:
    response = put(api_client, {"sms": {"opt": "OPT_IN"}})

    assert response.status_code == 400
    assert response.json() == invalid("Preference for sms is not sent in the request.")
    assert_nothing_written()


def test_body_without_email_or_sms_is_rejected(api_client: APIClient) -> None:
    response = put(api_client, {})

    assert response.status_code == 400
    assert response.json() == invalid("Either Email or SMS Preference is required.")
    assert_nothing_written()


def test_email_preference_for_a_member_without_email_is_rejected(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(email="")

    response = put(api_client, {"email": {"preference": "OPT_IN"}})

    assert response.status_code == 400
    assert response.json() == invalid("Account does not have an email for email communication.")
    assert_nothing_written()


def test_sms_preference_for_a_member_without_phone_is_rejected(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(phone="")

    response = put(api_client, {"sms": {"preference": "OPT_OUT"}})

    assert response.status_code == 400
    assert response.json() == invalid("Account does not have a phone number for sms communication.")
    assert_nothing_written()


# --- more shapes of the same rows --------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["opt_in", "OPT_IN ", "", "OPTED_IN", 1, True, ["OPT_IN"], {"value": "OPT_IN"}]
)
def test_anything_but_exactly_opt_in_or_opt_out_is_an_invalid_option(
    api_client: APIClient, value: Any
) -> None:
    response = put(api_client, {"email": {"preference": value}})

    assert response.json() == invalid("Invalid preference option sent for email.")


@pytest.mark.parametrize(
    "email", [None, "OPT_IN", ["OPT_IN"], 1, {"preference": None}, {"Preference": "OPT_IN"}]
)
def test_a_missing_null_or_non_object_channel_has_no_preference(
    api_client: APIClient, email: Any
) -> None:
    response = put(api_client, {"email": email})

    assert response.json() == invalid("Preference for email is not sent in the request.")


def test_every_unknown_channel_is_named_in_request_order(api_client: APIClient) -> None:
    body = {"whatsapp": {}, "email": {"preference": "OPT_IN"}, "Push": 1, "SMS": {}}

    response = put(api_client, body)

    assert response.json() == invalid(
        "Invalid communication channel present in the request: whatsapp, Push, SMS."
    )


def test_extra_keys_inside_a_channel_are_ignored(api_client: APIClient) -> None:
    response = put(api_client, {"email": {"preference": "OPT_IN", "topic": "NEWS"}})

    assert response.status_code == 200
    assert consent_of("EMAIL", "ada@example.com").state == "CONFIRMED"


# --- the order of the checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # unknown channel (4) before everything about the known ones
        ({"push": {}, "email": {}}, "Invalid communication channel present in the request: push."),
        ({"push": {}}, "Invalid communication channel present in the request: push."),
        # email (6) before sms (6)
        (
            {"sms": {"preference": "NO"}, "email": {"preference": "NO"}},
            "Invalid preference option sent for email.",
        ),
        (
            {"email": {}, "sms": {"preference": "NO"}},
            "Preference for email is not sent in the request.",
        ),
        (
            {"email": {"preference": "OPT_IN"}, "sms": {}},
            "Preference for sms is not sent in the request.",
        ),
    ],
)
def test_the_first_failed_check_is_reported(
    api_client: APIClient, body: dict[str, Any], message: str
) -> None:
    response = put(api_client, body)

    assert response.status_code == 400
    assert response.json() == invalid(message)


def test_preferences_are_checked_before_the_members_addresses(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(email="", phone="")

    response = put(api_client, {"email": {"preference": "OPT_IN"}, "sms": {"preference": "X"}})

    assert response.json() == invalid("Invalid preference option sent for sms.")


def test_a_missing_email_is_reported_before_a_missing_phone(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(email="", phone="")

    response = put(api_client, {"sms": {"preference": "OPT_IN"}, "email": {"preference": "OPT_IN"}})

    assert response.json() == invalid("Account does not have an email for email communication.")


def test_the_session_is_checked_before_the_body(api_client: APIClient) -> None:
    response = put_raw(api_client, "{not json", correlation_id="corr-unknown")

    assert response.status_code == 401
    assert response.json() == invalid(
        "Session expired or invalid correlation ID.", 401, "UNAUTHORIZED"
    )


def test_the_api_key_is_checked_before_the_session(anonymous_client: APIClient) -> None:
    response = put_raw(anonymous_client, "{not json", correlation_id="corr-unknown")

    assert response.status_code == 401
    assert response.json() == invalid(
        "Authentication credentials were not provided.", 401, "UNAUTHORIZED"
    )
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_wrong_api_key_is_unauthorized(anonymous_client: APIClient) -> None:
    anonymous_client.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")

    response = put(anonymous_client, {"email": {"preference": "OPT_IN"}})

    assert response.status_code == 401
    assert response.json() == invalid("The API key is not valid.", 401, "UNAUTHORIZED")
    assert_nothing_written()


# --- sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("correlation_id", ["corr-unknown", "corr%00ada", "x" * 129, "corr%0Aada"])
def test_an_unknown_correlation_id_is_unauthorized(
    api_client: APIClient, correlation_id: str
) -> None:
    response = put(api_client, {"email": {"preference": "OPT_IN"}}, correlation_id=correlation_id)

    assert response.status_code == 401
    assert response.json() == invalid(
        "Session expired or invalid correlation ID.", 401, "UNAUTHORIZED"
    )
    assert_nothing_written()


def test_a_session_is_refused_once_its_time_has_passed(
    api_client: APIClient, session: MemberSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = session.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    response = put(api_client, {"email": {"preference": "OPT_IN"}})

    assert response.status_code == 401
    assert response.json() == invalid(
        "Session expired or invalid correlation ID.", 401, "UNAUTHORIZED"
    )
    assert_nothing_written()


# --- the body ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["{", '{"email": }', "nul", "[1,", "\xff", "NaN", '{"a": Infinity}']
)
def test_malformed_json_is_rejected(api_client: APIClient, raw: str) -> None:
    response = put_raw(api_client, raw.encode("latin-1"))

    assert response.status_code == 400
    assert response.json() == invalid("Request body is not valid JSON.")


def test_deeply_nested_json_is_rejected_not_a_crash(api_client: APIClient) -> None:
    response = put_raw(api_client, "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert response.json() == invalid("The JSON is nested deeper than 32 levels.")


DEPTH_32 = '{"email": ' + "[" * 31 + "]" * 31 + "}"
WIDE = '{"email": {"preference": "OPT_IN"}, "extra": [' + ", ".join(["{}"] * 40) + "]}"
BRACKETS_IN_A_STRING = '{"email": {"preference": "' + "[{" * 40 + '"}}'


TOO_DEEP = "The JSON is nested deeper than 32 levels."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # Parsed, then refused for what the body says.
        (DEPTH_32, "Preference for email is not sent in the request."),
        (WIDE, "Invalid communication channel present in the request: extra."),  # 3 deep
        (BRACKETS_IN_A_STRING, "Invalid preference option sent for email."),
        # Refused before parsing.
        ('{"email": ' + "[" * 32 + "]" * 32 + "}", TOO_DEEP),
        ('{"a": "[[[", "b": ' + "[" * 32 + "]" * 32 + "}", TOO_DEEP),
    ],
)
def test_the_depth_limit_counts_nesting_not_brackets(
    api_client: APIClient, raw: str, message: str
) -> None:
    response = put_raw(api_client, raw)

    assert response.status_code == 400
    assert response.json() == invalid(message)


@pytest.mark.parametrize(
    "raw", ["[]", '[{"email": {"preference": "OPT_IN"}}]', '"email"', "1", "null"]
)
def test_a_json_body_that_is_not_an_object_is_rejected(api_client: APIClient, raw: str) -> None:
    response = put_raw(api_client, raw)

    assert response.status_code == 400
    assert response.json() == invalid("Request body must be a JSON object.")


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/xml"])
def test_a_body_that_is_not_json_by_content_type_is_a_415(
    api_client: APIClient, content_type: str
) -> None:
    response = put_raw(api_client, '{"email": {"preference": "OPT_IN"}}', content_type)

    assert response.status_code == 415
    assert response.json() == {
        "statusCode": 415,
        "errorCode": "UNSUPPORTED_MEDIA_TYPE",
        "errorMessage": "Content-Type must be application/json.",
    }
    assert response["MCK-APPID"] == "ES-CB-V1"
    assert_nothing_written()


def test_a_form_typed_body_that_is_not_json_is_a_400(api_client: APIClient) -> None:
    response = put_raw(api_client, "email=OPT_IN", "application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert response.json() == invalid("Request body is not valid JSON.")
    assert_nothing_written()


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        # What `curl -d` sends when no Content-Type is given.
        "application/x-www-form-urlencoded",
    ],
)
def test_json_is_read_without_a_content_type_or_with_a_json_one(
    api_client: APIClient, content_type: str
) -> None:
    response = put_raw(api_client, '{"email": {"preference": "OPT_IN"}}', content_type)

    assert response.status_code == 200
    assert response.json() == UPDATED


def test_an_empty_body_is_an_empty_object(api_client: APIClient) -> None:
    response = put_raw(api_client, "")

    assert response.json() == invalid("Either Email or SMS Preference is required.")


def test_an_encoded_body_is_unsupported(api_client: APIClient) -> None:
    response = put_raw(api_client, b"\x1f\x8b\x08\x00", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 415
    assert response.json() == invalid(
        "Content-Encoding 'gzip' is not supported.", 415, "UNSUPPORTED_MEDIA_TYPE"
    )


def test_a_body_over_the_upload_limit_is_too_large(api_client: APIClient, settings) -> None:
    settings.MAX_BODY_BYTES = 100

    response = put(api_client, {"email": {"preference": "OPT_IN", "padding": "x" * 200}})

    assert response.status_code == 413
    assert response.json() == invalid(
        "The request body is larger than 100 bytes.", 413, "PAYLOAD_TOO_LARGE"
    )
    assert response["MCK_CORRELATIONID"] == "corr-ada"


# --- all or nothing ----------------------------------------------------------------------------


def test_a_failure_on_sms_leaves_the_email_unchanged(
    api_client: APIClient, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(api_client, {"email": {"preference": "OPT_OUT"}})
    before = list(ConsentEvent.objects.values_list("id", flat=True))

    def refuse_phones(**kwargs: Any) -> Any:
        if kwargs["type"] == "PHONE":
            raise InvalidChange("Refused for the test.", field="state")
        return consent_upsert(**kwargs)

    monkeypatch.setattr(preferences, "consent_upsert", refuse_phones)

    response = put(api_client, {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_IN"}})

    assert response.status_code == 400
    assert response.json() == invalid("Refused for the test.")
    email = consent_of("EMAIL", "ada@example.com")
    assert (email.state, email.revision) == ("REVOKED", 1)
    assert not MarketingConsent.objects.filter(type="PHONE").exists()
    assert list(ConsentEvent.objects.values_list("id", flat=True)) == before


def test_a_member_without_phone_changes_neither_channel(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(phone="")

    response = put(api_client, {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_IN"}})

    assert response.json() == invalid("Account does not have a phone number for sms communication.")
    assert_nothing_written()


def test_a_stored_phone_that_is_no_number_is_rejected_before_any_write(
    api_client: APIClient, member: Member
) -> None:
    Member.objects.filter(pk=member.pk).update(phone="12")

    response = put(api_client, {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_IN"}})

    assert response.json() == invalid("'12' is not a valid phone number.")
    assert_nothing_written()
