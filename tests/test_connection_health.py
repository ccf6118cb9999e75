"""A kept PostgreSQL connection is checked before a request's first query without a round trip:
one the server has closed (a restart, a terminated backend) is dropped and replaced, a healthy
one is kept."""

import time

import pytest
from django.db import connection, connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kept():
    """A second connection to the database, as a worker keeps it between requests."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def terminate(wrapper) -> None:
    with wrapper.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    for _ in range(100):  # the server's goodbye reaches the socket
        if not wrapper.is_usable():
            return
        time.sleep(0.05)


def test_a_healthy_kept_connection_is_usable_and_kept(kept):
    assert kept.is_usable()

    kept.close_if_unusable_or_obsolete()  # a request ends, the next begins

    old = kept.connection
    with kept.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert kept.connection is old


def test_a_connection_the_server_closed_is_replaced_before_the_next_query(kept):
    old = kept.connection
    terminate(kept)

    assert not kept.is_usable()
    kept.close_if_unusable_or_obsolete()  # a request ends, the next begins
    with kept.cursor() as cursor:  # the health check drops it; the query gets a new one
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert kept.connection is not old


def test_a_connection_psycopg_knows_closed_is_not_usable(kept):
    kept.connection.close()

    assert not kept.is_usable()
