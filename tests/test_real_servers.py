"""Through real servers, `runserver` and gunicorn (with gunicorn.conf.py): the source's own curl
example as written, bodies sent without a JSON content type, and the member API's
`MCK_CORRELATIONID` header with its underscore."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import SERVERS, Server, prepare_database, running_server

UPSERT = "/marketing-consent/v1/marketing-consent/upsert"
SESSIONS = "/client/users/LOY-ADA/sessions"

# The source document's example, with only the host and the key changed and the line
# continuation it lacks after the Authorization header restored. It sends `-d` without a
# Content-Type, so curl sends `application/x-www-form-urlencoded`.
SEED_CURL = """curl -X POST \\
HOST/marketing-consent/v1/marketing-consent/upsert \\
-H 'Authorization: KEY' \\
-d '{
"details": {
"type": "EMAIL",
"email": "test@test.com"
},
"state": "PENDING",
"lastConfirmationActivity": {
"source": "IN_PERSON",
"description": "Person filled a printed document.",
"updated_date": "2023-05-01T00:00:00Z",
"optInLevel": "DOUBLE_CONFIRMATION"
}
}'"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, str], str]:
    directory = tmp_path_factory.mktemp("served")
    return directory, *prepare_database(directory)


@pytest.fixture(scope="module", params=SERVERS)
def server(request, prepared):
    directory, environment, api_key = prepared
    log = directory / f"{request.param}.log"
    with running_server(request.param, environment, api_key, log) as running:
        yield running


def auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Api-Key {server.api_key}"}


def start_session(server: Server, correlation_id: str) -> None:
    answer = server.request(
        "POST",
        SESSIONS,
        json.dumps({"correlationId": correlation_id, "channel": "WEBSITE"}).encode(),
        {**auth(server), "X-Identifier-Type": "LOYALTY_ID", "Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.body


# --- the seed's curl ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_seed_curl_example_works_as_written(server):
    script = SEED_CURL.replace("HOST", server.url).replace("KEY", server.api_key)

    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)

    body = json.loads(done.stdout)
    consent = body["marketingConsent"]
    assert consent["details"] == {"type": "EMAIL", "email": "test@test.com"}
    assert consent["state"] == "PENDING"
    assert consent["lastConfirmationActivity"] == {
        "source": "IN_PERSON",
        "description": "Person filled a printed document.",
        "updatedDate": "2023-05-01T00:00:00.000Z",
        "optInLevel": "DOUBLE_CONFIRMATION",
    }
    assert consent["extendedFields"] == {}
    assert body["link"]["type"] == "CONFIRMATION"
    assert body["link"]["url"].startswith("http://127.0.0.1:8000/_manage-consent/subscribe?token=")


SEED_BODY = (
    b'{\n"details": {\n"type": "EMAIL",\n"email": "seed@test.com"\n},\n"state": "PENDING",\n'
    b'"lastConfirmationActivity": {\n"source": "IN_PERSON",\n'
    b'"updated_date": "2023-05-01T00:00:00Z",\n"optInLevel": "DOUBLE_CONFIRMATION"\n}\n}'
)


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_a_consent_api_json_body_without_a_json_content_type_is_read_as_json(server, content_type):
    headers = {"Authorization": server.api_key}  # the bare key, as the platform's clients send
    if content_type:
        headers["Content-Type"] = content_type

    answer = server.request("POST", UPSERT, SEED_BODY, headers)

    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["marketingConsent"]["state"] == "PENDING"


def test_a_consent_api_body_of_another_type_is_a_415(server):
    answer = server.request(
        "POST", UPSERT, SEED_BODY, {"Authorization": server.api_key, "Content-Type": "text/plain"}
    )

    assert answer.status == 415
    assert json.loads(answer.body) == {
        "message": 'Unsupported media type "text/plain" in request.',
        "details": {
            "applicationError": {
                "code": "UNSUPPORTED_MEDIA_TYPE",
                "description": 'Unsupported media type "text/plain" in request.',
            }
        },
    }


# --- the member API ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_a_member_api_json_body_without_a_json_content_type_is_read_as_json(server, content_type):
    start_session(server, "corr-no-type")
    headers = auth(server)
    if content_type:
        headers["Content-Type"] = content_type

    answer = server.request(
        "PUT",
        "/client/users/corr-no-type/profile/marketing-subscription",
        b'{"email": {"preference": "OPT_IN"}}',
        headers,
    )

    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"message": "Marketing subscription status updated."}


def test_a_member_api_body_of_another_type_is_a_415_in_the_envelope(server):
    start_session(server, "corr-text")

    answer = server.request(
        "PUT",
        "/client/users/corr-text/profile/marketing-subscription",
        b'{"email": {"preference": "OPT_IN"}}',
        {**auth(server), "Content-Type": "text/plain"},
    )

    assert answer.status == 415
    assert json.loads(answer.body) == {
        "statusCode": 415,
        "errorCode": "UNSUPPORTED_MEDIA_TYPE",
        "errorMessage": "Content-Type must be application/json.",
    }


@pytest.mark.parametrize("header", ["MCK_CORRELATIONID", "MCK-CORRELATIONID", "mck_correlationid"])
def test_the_correlation_id_header_arrives_with_either_spelling(server, header):
    answer = server.request(
        "GET", "/client/users/corr-nobody/profile/marketing-preferences", None,
        {**auth(server), header: "corr-from-header"},
    )  # fmt: skip

    assert answer.status == 401
    assert answer.headers["MCK_CORRELATIONID"] == "corr-from-header"


def test_with_both_spellings_the_hyphenated_one_wins(server):
    answer = server.request(
        "GET", "/client/users/corr-nobody/profile/marketing-preferences", None,
        {**auth(server), "MCK_CORRELATIONID": "underscore", "MCK-CORRELATIONID": "hyphen"},
    )  # fmt: skip

    assert answer.headers["MCK_CORRELATIONID"] == "hyphen"


def test_other_underscore_headers_still_never_reach_the_application(server):
    # X_Request_ID would otherwise pass for X-Request-ID.
    answer = server.request("GET", "/healthz", None, {"X_Request_ID": "spoofed-id"})

    assert answer.status == 200
    assert answer.headers["X-Request-ID"] != "spoofed-id"
    assert len(answer.headers["X-Request-ID"]) == 32
