"""POST /marketing-consent/v1/marketing-consent/query: filters, sort and cursor paging."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consents.ledger import (
    BatchItem,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert_batch,
)
from consents.models import MarketingConsent
from tests.consents.conftest import API

pytestmark = pytest.mark.django_db

QUERY = f"{API}/marketing-consent/query"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def consents(db) -> dict[str, MarketingConsent]:
    """Five consents: emails a..c (CONFIRMED, REVOKED, PENDING), two phones (CONFIRMED,
    NEVER_CONFIRMED), created one day apart in that order."""
    confirmed = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM"))
    rows = [
        ("EMAIL", "a@example.com", confirmed),
        ("EMAIL", "b@example.com", ConsentChange(state="REVOKED", revoke=RevokeActivity())),
        (
            "EMAIL",
            "c@other.org",
            ConsentChange(state="PENDING", confirmation=ConfirmationActivity()),
        ),
        ("PHONE", "+14155550100", confirmed),
        ("PHONE", "+14155550101", ConsentChange(state="NEVER_CONFIRMED")),
    ]
    consent_upsert_batch(
        items=[BatchItem(*row) for row in rows],
        context=ChangeContext(door="COMMAND", actor="test"),
    )
    for day, (_, address, _) in enumerate(rows):
        moment = T0 + timedelta(days=day)
        MarketingConsent.objects.filter(address=address).update(
            created_date=moment, updated_date=moment + timedelta(days=10 - 2 * day)
        )
    return {consent.address: consent for consent in MarketingConsent.objects.all()}


def query(api_client, body: dict):
    return api_client.post(QUERY, body, format="json")


def addresses(response) -> list[str]:
    return [
        consent["details"].get("email") or consent["details"].get("phone")
        for consent in response.json()["marketingConsent"]
    ]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({}, ["a@example.com", "b@example.com", "c@other.org", "+14155550100", "+14155550101"]),
        ({"state": "CONFIRMED"}, ["a@example.com", "+14155550100"]),
        ({"state": {"$eq": "REVOKED"}}, ["b@example.com"]),
        ({"state": {"$ne": "CONFIRMED"}}, ["b@example.com", "c@other.org", "+14155550101"]),
        ({"state": {"$in": ["PENDING", "NEVER_CONFIRMED"]}}, ["c@other.org", "+14155550101"]),
        ({"details.email": "A@Example.com"}, ["a@example.com"]),
        (
            {"details.email": {"$in": ["b@example.com", "c@other.org"]}},
            ["b@example.com", "c@other.org"],
        ),
        ({"details.email": {"$startsWith": "C@"}}, ["c@other.org"]),
        ({"details.email": {"$exists": True}}, ["a@example.com", "b@example.com", "c@other.org"]),
        ({"details.email": {"$exists": False}}, ["+14155550100", "+14155550101"]),
        (
            {"details.email": {"$ne": "a@example.com"}},
            ["b@example.com", "c@other.org", "+14155550100", "+14155550101"],
        ),
        ({"details.phone": "(415) 555-0101"}, ["+14155550101"]),
        ({"details.phone": {"$startsWith": "+1415555010"}}, ["+14155550100", "+14155550101"]),
        ({"createdDate": {"$gt": "2024-01-03T00:00:00Z"}}, ["+14155550100", "+14155550101"]),
        (
            {"createdDate": {"$gte": "2024-01-03T00:00:00Z"}},
            ["c@other.org", "+14155550100", "+14155550101"],
        ),
        ({"createdDate": {"$lt": "2024-01-02T00:00:00.000Z"}}, ["a@example.com"]),
        ({"createdDate": {"$lte": "2024-01-02T00:00:00Z"}}, ["a@example.com", "b@example.com"]),
        ({"createdDate": "2024-01-02T00:00:00Z"}, ["b@example.com"]),
        (
            {"createdDate": {"$ne": "2024-01-02T00:00:00Z"}},
            ["a@example.com", "c@other.org", "+14155550100", "+14155550101"],
        ),
        ({"updatedDate": {"$lt": "2024-01-08T00:00:00Z"}}, ["+14155550101"]),
        ({"updatedDate": {"$lte": "2024-01-08T00:00:00Z"}}, ["+14155550100", "+14155550101"]),
        (
            {"$or": [{"state": "REVOKED"}, {"details.phone": {"$exists": True}}]},
            ["b@example.com", "+14155550100", "+14155550101"],
        ),
        (
            {"$and": [{"state": "CONFIRMED"}, {"details.email": {"$exists": True}}]},
            ["a@example.com"],
        ),
        ({"$not": {"details.email": {"$exists": True}}}, ["+14155550100", "+14155550101"]),
    ],
)
def test_filters(api_client, consents, filter_, expected):
    response = query(api_client, {"query": {"filter": filter_}})

    assert response.status_code == 200
    assert sorted(addresses(response)) == sorted(expected)


def test_filter_by_id(api_client, consents):
    wanted = consents["b@example.com"]

    assert addresses(query(api_client, {"query": {"filter": {"id": str(wanted.id)}}})) == [
        "b@example.com"
    ]
    others = query(api_client, {"query": {"filter": {"id": {"$ne": str(wanted.id)}}}})
    assert "b@example.com" not in addresses(others)
    both = {"id": {"$in": [str(wanted.id), str(consents["c@other.org"].id)]}}
    assert sorted(addresses(query(api_client, {"query": {"filter": both}}))) == [
        "b@example.com",
        "c@other.org",
    ]


def test_default_order_is_by_id(api_client, consents):
    response = query(api_client, {"query": {}})

    ids = [consent["id"] for consent in response.json()["marketingConsent"]]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (
            {"fieldName": "createdDate", "order": "ASC"},
            ["a@example.com", "b@example.com", "c@other.org", "+14155550100", "+14155550101"],
        ),
        (
            {"fieldName": "createdDate", "order": "DESC"},
            ["+14155550101", "+14155550100", "c@other.org", "b@example.com", "a@example.com"],
        ),
        (
            {"fieldName": "updatedDate"},
            ["+14155550101", "+14155550100", "c@other.org", "b@example.com", "a@example.com"],
        ),
    ],
)
def test_sort(api_client, consents, sort, expected):
    response = query(api_client, {"query": {"sort": [sort]}})

    assert addresses(response) == expected


def test_paging_metadata_of_a_single_page(api_client, consents):
    response = query(api_client, {"query": {"filter": {"state": "CONFIRMED"}}})

    assert response.json()["pagingMetadata"] == {
        "count": 2,
        "cursors": {"next": None, "prev": None},
        "hasNext": False,
    }


@pytest.mark.parametrize("sort", [None, [{"fieldName": "createdDate", "order": "DESC"}]])
def test_paging_through_more_than_a_page_misses_and_repeats_nothing(api_client, sort):
    change = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity())
    consent_upsert_batch(
        items=[BatchItem("EMAIL", f"p{n:03d}@example.com", change) for n in range(23)],
        context=ChangeContext(door="COMMAND", actor="test"),
    )
    # Equal sort values across pages: the id breaks the tie.
    MarketingConsent.objects.filter(address__lt="p010").update(created_date=T0)
    first = {"query": {"cursorPaging": {"limit": 5}}}
    if sort:
        first["query"]["sort"] = sort

    seen, pages, body = [], 0, first
    while True:
        page = query(api_client, body).json()
        pages += 1
        seen += addresses_of(page)
        if not page["pagingMetadata"]["hasNext"]:
            break
        body = {
            "query": {
                "cursorPaging": {"limit": 5, "cursor": page["pagingMetadata"]["cursors"]["next"]}
            }
        }

    assert pages == 5
    assert sorted(seen) == sorted(f"p{n:03d}@example.com" for n in range(23))
    assert len(seen) == len(set(seen))


SORT_BY_DAY_THEN_NEWEST_UPDATE = [
    {"fieldName": "createdDate", "order": "ASC"},
    {"fieldName": "updatedDate", "order": "DESC"},
]


def seven_consents_on_three_days() -> list[str]:
    """Seven addresses, created on three days, updated at times that tie too; in the order of
    SORT_BY_DAY_THEN_NEWEST_UPDATE (ties broken by id, descending like the last key)."""
    change = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity())
    consent_upsert_batch(
        items=[BatchItem("EMAIL", f"s{n}@example.com", change) for n in range(7)],
        context=ChangeContext(door="COMMAND", actor="test"),
    )
    days_and_updates = [(2, 1), (0, 5), (1, 3), (0, 9), (2, 1), (0, 5), (1, 4)]
    for n, (day, update) in enumerate(days_and_updates):
        MarketingConsent.objects.filter(address=f"s{n}@example.com").update(
            created_date=T0 + timedelta(days=day), updated_date=T0 + timedelta(hours=update)
        )
    rows = MarketingConsent.objects.all()
    ordered = sorted(rows, key=lambda c: (-c.id.int,))
    ordered = sorted(ordered, key=lambda c: -c.updated_date.timestamp())
    ordered = sorted(ordered, key=lambda c: c.created_date)
    return [consent.address for consent in ordered]


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_sort_by_two_fields_each_with_its_order_pages_exactly(api_client, limit):
    expected = seven_consents_on_three_days()
    body = {"query": {"sort": SORT_BY_DAY_THEN_NEWEST_UPDATE, "cursorPaging": {"limit": limit}}}

    seen, pages = [], []
    while True:
        page = query(api_client, body).json()
        pages.append(page)
        seen += addresses_of(page)
        if not page["pagingMetadata"]["hasNext"]:
            break
        cursor = page["pagingMetadata"]["cursors"]["next"]
        body = {"query": {"cursorPaging": {"limit": limit, "cursor": cursor}}}

    assert seen == expected
    # And back: each prev cursor gives the page before it.
    for before, page in pairwise(pages):
        cursor = page["pagingMetadata"]["cursors"]["prev"]
        back = query(api_client, {"query": {"cursorPaging": {"limit": limit, "cursor": cursor}}})
        assert addresses_of(back.json()) == addresses_of(before)


def test_the_second_sort_field_orders_ties_of_the_first(api_client):
    expected = seven_consents_on_three_days()

    response = query(api_client, {"query": {"sort": SORT_BY_DAY_THEN_NEWEST_UPDATE}})

    assert addresses_of(response.json()) == expected
    assert addresses_of(response.json())[:3] == ["s3@example.com", *expected[1:3]]


def addresses_of(page: dict) -> list[str]:
    return [consent["details"]["email"] for consent in page["marketingConsent"]]


def test_the_prev_cursor_goes_back_one_page(api_client, consents):
    first = query(api_client, {"query": {"cursorPaging": {"limit": 2}}}).json()
    second = query(
        api_client,
        {
            "query": {
                "cursorPaging": {"limit": 2, "cursor": first["pagingMetadata"]["cursors"]["next"]}
            }
        },
    ).json()

    back = query(
        api_client,
        {
            "query": {
                "cursorPaging": {"limit": 2, "cursor": second["pagingMetadata"]["cursors"]["prev"]}
            }
        },
    ).json()

    assert addresses_of_any(back) == addresses_of_any(first)
    assert back["pagingMetadata"]["hasNext"] is True
    assert back["pagingMetadata"]["cursors"]["prev"] is None


def addresses_of_any(page: dict) -> list[str]:
    return [
        c["details"].get("email") or c["details"].get("phone") for c in page["marketingConsent"]
    ]


def test_a_cursor_keeps_its_filter(api_client, consents):
    first = query(
        api_client, {"query": {"filter": {"state": "CONFIRMED"}, "cursorPaging": {"limit": 1}}}
    )
    cursor = first.json()["pagingMetadata"]["cursors"]["next"]

    follow_up = query(api_client, {"query": {"cursorPaging": {"cursor": cursor}}})

    assert sorted(addresses(first) + addresses(follow_up)) == ["+14155550100", "a@example.com"]
    assert follow_up.json()["pagingMetadata"]["hasNext"] is False


def test_a_cursor_cannot_be_used_with_another_filter(api_client, consents):
    first = query(
        api_client, {"query": {"filter": {"state": "CONFIRMED"}, "cursorPaging": {"limit": 1}}}
    )
    cursor = first.json()["pagingMetadata"]["cursors"]["next"]

    response = query(
        api_client, {"query": {"filter": {"state": "REVOKED"}, "cursorPaging": {"cursor": cursor}}}
    )

    assert response.status_code == 400
    [found] = response.json()["details"]["validationError"]["fieldViolations"]
    assert found["field"] == "query.cursorPaging.cursor"


def test_a_tampered_cursor_is_refused(api_client, consents):
    first = query(api_client, {"query": {"cursorPaging": {"limit": 1}}})
    cursor = first.json()["pagingMetadata"]["cursors"]["next"]

    response = query(api_client, {"query": {"cursorPaging": {"cursor": cursor[:-2] + "xx"}}})

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"query": {"filter": {"revision": "2"}}}, "query.filter.revision", "INVALID_ENUM_VALUE"),
        (
            {"query": {"filter": {"state": {"$gt": "A"}}}},
            "query.filter.state.$gt",
            "INVALID_ENUM_VALUE",
        ),
        (
            {"query": {"filter": {"state": "OPTED_IN"}}},
            "query.filter.state.$eq",
            "INVALID_ENUM_VALUE",
        ),
        (
            {"query": {"filter": {"createdDate": {"$gt": 5}}}},
            "query.filter.createdDate.$gt",
            "FORMAT",
        ),
        ({"query": {"filter": {"id": "nope"}}}, "query.filter.id.$eq", "FORMAT"),
        (
            {"query": {"filter": {"details.email": {"$in": "a"}}}},
            "query.filter.details.email.$in",
            "FORMAT",
        ),
        (
            {"query": {"filter": {"details.phone": "12"}}},
            "query.filter.details.phone.$eq",
            "FORMAT",
        ),
        (
            {"query": {"filter": {"state": {"$exists": True}}}},
            "query.filter.state.$exists",
            "INVALID_ENUM_VALUE",
        ),
        ({"query": {"filter": {"$or": []}}}, "query.filter.$or", "FORMAT"),
        ({"query": {"filter": []}}, "query.filter", "FORMAT"),
        (
            {"query": {"sort": [{"fieldName": "address"}]}},
            "query.sort[0].fieldName",
            "INVALID_ENUM_VALUE",
        ),
        ({"query": {"sort": [{"fieldName": {}}]}}, "query.sort[0].fieldName", "INVALID_ENUM_VALUE"),
        (
            {"query": {"sort": [{"fieldName": "updatedDate"}, {"fieldName": "address"}]}},
            "query.sort[1].fieldName",
            "INVALID_ENUM_VALUE",
        ),
        (
            {"query": {"sort": [{"fieldName": "updatedDate"}, {"fieldName": "updatedDate"}]}},
            "query.sort[1].fieldName",
            "INVALID_VALUE",
        ),
        (
            {"query": {"sort": [{"fieldName": "createdDate"}, {"fieldName": "createdDate"}] * 2}},
            "query.sort",
            "FORMAT",
        ),
        ({"query": {"sort": [{"fieldName": "createdDate"}, "x"]}}, "query.sort[1]", "FORMAT"),
        (
            {"query": {"sort": [{"fieldName": "createdDate", "order": "UP"}]}},
            "query.sort[0].order",
            "INVALID_ENUM_VALUE",
        ),
        ({"query": {"cursorPaging": {"limit": 101}}}, "query.cursorPaging.limit", "FORMAT"),
        ({"query": {"cursorPaging": {"limit": 0}}}, "query.cursorPaging.limit", "FORMAT"),
        ({"query": "everything"}, "query", "FORMAT"),
    ],
)
def test_unsupported_fields_operators_and_values_are_400(api_client, consents, body, field, rule):
    response = query(api_client, body)

    assert response.status_code == 400
    [found] = response.json()["details"]["validationError"]["fieldViolations"]
    assert (found["field"], found["violatedRule"]) == (field, rule)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(
        ["CONFIRMED", "2024-01-01T00:00:00Z", "a@example.com", "+14155550100", "$eq", "id"]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "state",
                    "id",
                    "createdDate",
                    "details.email",
                    "details.phone",
                    "$and",
                    "$or",
                    "$not",
                    "$eq",
                    "$ne",
                    "$in",
                    "$exists",
                    "$startsWith",
                    "$gt",
                    "$lte",
                    "fieldName",
                    "order",
                    "limit",
                    "cursor",
                    "x",
                ]
            ),
            children,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filter_=json_values, sort=json_values, paging=json_values)
def test_random_query_documents_never_fail(api_client, filter_, sort, paging):
    response = query(
        api_client, {"query": {"filter": filter_, "sort": sort, "cursorPaging": paging}}
    )

    assert response.status_code in (200, 400)
