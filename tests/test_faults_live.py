"""Faults on a live stack (gunicorn and a PostgreSQL cluster of the test's own): a worker killed
or the database restarted in the middle of a write never jams its Idempotency-Key; an outage is
answered 503 in each door's shape and passes without restarting the app; waits are bounded."""

import http.client
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.live import Answer, LiveStack, live_stack, wait_for

pytestmark = pytest.mark.postgres

UPSERT = "/marketing-consent/v1/marketing-consent/upsert"
LEASE_SECONDS = 2
STATEMENT_TIMEOUT_SECONDS = 3
OUTAGE = "The service is temporarily unavailable. Try again shortly."
CONSENT_OUTAGE = {
    "message": OUTAGE,
    "details": {"applicationError": {"code": "UNAVAILABLE", "description": OUTAGE}},
}
MEMBER_OUTAGE = {"statusCode": 503, "errorCode": "SERVICE_UNAVAILABLE", "errorMessage": OUTAGE}


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    with live_stack(
        IDEMPOTENCY_LEASE=str(LEASE_SECONDS),
        DATABASE_CONNECT_TIMEOUT="2",
        DATABASE_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT_SECONDS),
    ) as stack:
        yield stack


def upsert_body(address: str, state: str) -> dict:
    if state == "REVOKED":
        return {
            "details": {"type": "EMAIL", "email": address},
            "state": "REVOKED",
            "lastRevokeActivity": {"source": "FORM", "updatedDate": "2024-02-01T00:00:00Z"},
        }
    return {
        "details": {"type": "EMAIL", "email": address},
        "state": state,
        "lastConfirmationActivity": {"source": "FORM", "updatedDate": "2024-01-01T00:00:00Z"},
    }


def upsert(stack: LiveStack, address: str, state: str, **headers: str) -> Answer:
    return stack.app.send("POST", UPSERT, upsert_body(address, state), **auth(stack), **headers)


def auth(stack: LiveStack) -> dict[str, str]:
    return {"Authorization": f"Api-Key {stack.api_key}"}


def query_one(stack: LiveStack, sql: str, *params: object) -> tuple:
    with stack.postgres.connect(autocommit=True) as connection:
        return connection.execute(sql, params).fetchone()


class WriteBlockedOnARowLock:
    """An upsert sent with an Idempotency-Key, held up by a row lock on its consent (taken by
    another connection) after its key was claimed: between the record and the response."""

    def __init__(self, stack: LiveStack, address: str, key: str) -> None:
        self.stack = stack
        self.lock = stack.postgres.connect()
        self.lock.execute(
            "SELECT 1 FROM consents_marketingconsent WHERE address = %s FOR UPDATE", (address,)
        )
        self.answers: list[Answer | Exception] = []

        def send() -> None:
            try:
                self.answers.append(upsert(stack, address, "REVOKED", **{"Idempotency-Key": key}))
            except OSError as error:  # the worker died under it
                self.answers.append(error)

        self.thread = threading.Thread(target=send)
        self.thread.start()
        wait_for(self.waits_on_the_lock, "the write waited on the row lock")
        assert query_one(
            stack, "SELECT status_code FROM consents_idempotencyrecord WHERE key = %s", key
        ) == (None,)

    def waits_on_the_lock(self) -> bool:
        (waiting,) = query_one(
            self.stack,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        return waiting == 1

    def release(self) -> None:
        try:
            self.lock.close()
        finally:
            self.thread.join(timeout=60)


def retry_until_answered(stack: LiveStack, address: str, key: str) -> tuple[list[Answer], Answer]:
    """Retry as a client should: after a 409 "still being processed", wait its Retry-After."""
    waits = []
    for _ in range(10):
        answer = upsert(stack, address, "REVOKED", **{"Idempotency-Key": key})
        if answer.status != 409:
            return waits, answer
        waits.append(answer)
        time.sleep(int(answer.headers["Retry-After"]))
    raise AssertionError("The key stayed jammed.")


def assert_revoked_once(stack: LiveStack, address: str, answer: Answer) -> None:
    assert answer.status == 200
    assert answer.body["marketingConsent"]["state"] == "REVOKED"
    assert answer.body["marketingConsent"]["revision"] == "2"
    assert query_one(
        stack,
        "SELECT state, revision FROM consents_marketingconsent WHERE address = %s",
        address,
    ) == ("REVOKED", 2)
    assert query_one(
        stack,
        "SELECT count(*) FROM consents_consentevent WHERE address = %s AND kind = 'UPDATED'",
        address,
    ) == (1,)


def assert_told_to_wait(answers: list[Answer]) -> None:
    for answer in answers:
        assert answer.body["details"]["applicationError"]["code"] == "ABORTED"
        assert 1 <= int(answer.headers["Retry-After"]) <= LEASE_SECONDS


def test_a_key_whose_worker_was_killed_mid_write_is_free_after_its_lease(stack):
    address = "killed-worker@example.com"
    assert upsert(stack, address, "CONFIRMED").status == 200
    write = WriteBlockedOnARowLock(stack, address, key="kill-1")

    stack.app.kill_worker()
    write.release()
    waits, answer = retry_until_answered(stack, address, key="kill-1")

    assert isinstance(write.answers[0], OSError)  # the client never heard back
    assert_told_to_wait(waits)
    assert_revoked_once(stack, address, answer)


def test_a_key_whose_write_lost_the_database_is_free_after_its_lease(stack):
    address = "restarted-database@example.com"
    assert upsert(stack, address, "CONFIRMED").status == 200
    write = WriteBlockedOnARowLock(stack, address, key="restart-1")

    stack.postgres.stop()
    write.release()
    stack.postgres.start()
    waits, answer = retry_until_answered(stack, address, key="restart-1")

    [interrupted] = write.answers
    assert (interrupted.status, interrupted.body) == (503, CONSENT_OUTAGE)
    assert interrupted.headers["Retry-After"] == "5"
    assert_told_to_wait(waits)
    assert_revoked_once(stack, address, answer)


def test_a_chunked_body_is_refused_not_read_as_empty(stack):
    body = json.dumps(upsert_body("chunked@example.com", "CONFIRMED")).encode()
    connection = http.client.HTTPConnection("127.0.0.1", stack.app.port, timeout=30)
    headers = {**auth(stack), "Content-Type": "application/json"}

    connection.request("POST", UPSERT, body=iter([body]), headers=headers)  # no length: chunked
    response = connection.getresponse()

    message = "Send the request body with a Content-Length header, not chunked."
    assert (response.status, json.loads(response.read())) == (
        411,
        {
            "message": message,
            "details": {"applicationError": {"code": "LENGTH_REQUIRED", "description": message}},
        },
    )
    assert query_one(
        stack,
        "SELECT count(*) FROM consents_marketingconsent WHERE address = %s",
        "chunked@example.com",
    ) == (0,)


def test_an_outage_is_a_503_in_each_doors_shape_and_passes_without_restarting_the_app(stack):
    link = urlsplit(upsert(stack, "outage@example.com", "CONFIRMED").body["link"]["url"])
    session = {"correlationId": "corr-outage", "channel": "WEBSITE"}
    started = stack.app.send(
        "POST",
        "/client/users/LOY-1001/sessions",
        session,
        **auth(stack),
        **{"X-Identifier-Type": "LOYALTY_ID"},
    )
    assert started.status == 200
    preferences = "/client/users/corr-outage/profile/marketing-preferences"
    subscription = "/client/users/corr-outage/profile/marketing-subscription"
    opt_out = {"email": {"preference": "OPT_OUT"}}
    requests = {
        "consent API": lambda: upsert(stack, "outage@example.com", "REVOKED"),
        # Errors raised in the guard middleware (the key's claim) are outages too.
        "consent API, Idempotency-Key": lambda: upsert(
            stack, "outage@example.com", "REVOKED", **{"Idempotency-Key": "outage-1"}
        ),
        "member API": lambda: stack.app.send("GET", preferences, **auth(stack)),
        "member API, Idempotency-Key": lambda: stack.app.send(
            "PUT", subscription, opt_out, **auth(stack), **{"Idempotency-Key": "outage-2"}
        ),
        "link page": lambda: stack.app.send("GET", f"{link.path}?{link.query}"),
    }

    stack.postgres.stop()
    try:
        during = {name: send() for name, send in requests.items()}
        health = stack.app.send("GET", "/healthz")
    finally:
        stack.postgres.start()
    after = {name: send() for name, send in requests.items()}

    assert {
        name: (answer.status, answer.headers.get("Retry-After")) for name, answer in during.items()
    } == dict.fromkeys(requests, (503, "5"))
    assert (
        during["consent API"].body == during["consent API, Idempotency-Key"].body == CONSENT_OUTAGE
    )
    assert during["member API"].body == during["member API, Idempotency-Key"].body == MEMBER_OUTAGE
    assert during["member API, Idempotency-Key"].headers["MCK_CORRELATIONID"] == "corr-outage"
    assert "Please try again in a moment" in during["link page"].body
    assert (health.status, health.body) == (503, {"status": "unavailable"})
    assert {name: answer.status for name, answer in after.items()} == dict.fromkeys(requests, 200)
    assert stack.app.send("GET", "/healthz").body == {"status": "ok"}


def test_a_statement_stuck_on_a_lock_is_an_outage_after_the_statement_timeout(stack):
    address = "stuck@example.com"
    assert upsert(stack, address, "CONFIRMED").status == 200
    lock = stack.postgres.connect()
    lock.execute(
        "SELECT 1 FROM consents_marketingconsent WHERE address = %s FOR UPDATE", (address,)
    )
    try:
        stuck = upsert(stack, address, "REVOKED")
    finally:
        lock.close()

    assert (stuck.status, stuck.body, stuck.headers["Retry-After"]) == (503, CONSENT_OUTAGE, "5")
    assert query_one(
        stack, "SELECT state FROM consents_marketingconsent WHERE address = %s", address
    ) == ("CONFIRMED",)


def test_healthz_answers_while_the_database_is_frozen(stack):
    with stack.postgres.frozen():  # a connection attempt hangs: healthz must not
        frozen = stack.app.send("GET", "/healthz")

    assert (frozen.status, frozen.body) == (503, {"status": "unavailable"})
    wait_for(lambda: stack.app.send("GET", "/healthz").status == 200, "healthz recovered")
