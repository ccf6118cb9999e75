"""A client written against the source document, over real HTTP: it starts a session, sends the
document's example and every row of its error table, and reads the result back."""

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.factories import MemberFactory


class Client:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], Any]:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Api-Key {self.api_key}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.load(error)


def invalid(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "errorCode": "INVALID_REQUEST", "errorMessage": message}


@pytest.mark.django_db(transaction=True)
def test_a_client_of_the_source_document_gets_the_documented_answers(
    live_server: Any, api_key: Any
) -> None:
    client = Client(live_server.url, api_key.clear_key)
    MemberFactory(loyalty_id="LOY-7", email="seven@example.com", phone="+14155550107")
    MemberFactory(loyalty_id="LOY-8", email="", phone="")

    sessions = {}
    for loyalty_id, correlation_id in (("LOY-7", "corr-7"), ("LOY-8", "corr-8")):
        status, headers, body = client.send(
            "POST",
            f"/client/users/{loyalty_id}/sessions",
            {"correlationId": correlation_id, "channel": "WEBSITE"},
            {"X-Identifier-Type": "LOYALTY_ID"},
        )
        assert status == 200, body
        sessions[loyalty_id] = f"/client/users/{correlation_id}/profile/marketing-subscription"

    # The document's example.
    status, headers, body = client.send(
        "PUT",
        sessions["LOY-7"],
        {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}},
        {"MCK-CORRELATIONID": "trace-7"},
    )
    assert (status, body) == (200, {"message": "Marketing subscription status updated."})
    assert headers["MCK_CORRELATIONID"] == "trace-7"
    assert headers["MCK-APPID"] == "ES-CB-V1"
    assert headers["MCK-MSGID"].startswith("mck-")

    # The document's error table, row by row.
    rows = [
        ("LOY-7", {"email": {"preference": "YES"}}, "Invalid preference option sent for email."),
        ("LOY-7", {"sms": {"preference": "NO"}}, "Invalid preference option sent for sms."),
        (
            "LOY-7",
            {"push": {"preference": "OPT_IN"}},
            "Invalid communication channel present in the request: push.",
        ),
        ("LOY-7", {"email": {}}, "Preference for email is not sent in the request."),
        ("LOY-7", {"sms": {}}, "Preference for sms is not sent in the request."),
        ("LOY-7", {}, "Either Email or SMS Preference is required."),
        (
            "LOY-8",
            {"email": {"preference": "OPT_IN"}},
            "Account does not have an email for email communication.",
        ),
        (
            "LOY-8",
            {"sms": {"preference": "OPT_IN"}},
            "Account does not have a phone number for sms communication.",
        ),
    ]
    for member, request_body, message in rows:
        status, headers, body = client.send("PUT", sessions[member], request_body)
        assert (status, body) == (400, invalid(message))
        assert headers["MCK_CORRELATIONID"] == f"corr-{member[-1]}"

    status, _, body = client.send("GET", "/client/users/corr-7/profile/marketing-preferences")
    assert status == 200
    email, sms = body["EMAIL"]["LOYALTY"], body["SMS"]["32123"]
    assert (email["status"], email["lastStatusUpdateSource"]) == ("OPTED_IN", "CUX")
    assert (sms["status"], sms["lastStatusUpdateSource"]) == ("OPTED_OUT", "CUX")
