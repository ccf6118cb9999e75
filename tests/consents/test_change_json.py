"""The staged row's copy of a change (what its event records as `request`) is written out by
hand for speed; it must be the text the general encoder writes for `ConsentChange.as_json`."""

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from consents.ledger import ConfirmationActivity, ConsentChange, RevokeActivity
from consents.ledger.postgres import change_json, to_json

texts = st.text(max_size=8)
dates = st.one_of(
    st.none(),
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
        ),
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
changes = st.builds(
    ConsentChange,
    state=st.one_of(st.none(), st.sampled_from(["PENDING", "CONFIRMED", "REVOKED"]), texts),
    confirmation=st.one_of(
        st.none(),
        st.builds(
            ConfirmationActivity,
            source=texts,
            description=texts,
            updated_date=dates,
            opt_in_level=texts,
        ),
    ),
    revoke=st.one_of(
        st.none(), st.builds(RevokeActivity, source=texts, description=texts, updated_date=dates)
    ),
    extended_fields=st.one_of(st.none(), st.dictionaries(texts, json_values, max_size=3)),
)


@given(changes)
def test_a_changes_json_is_the_encoders_text_of_it(change):
    assert change_json(change) == to_json(change.as_json())


def test_a_changes_json_with_every_part():
    change = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM",
            description='said "yes" — twice\n',
            updated_date=datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC),
            opt_in_level="SINGLE_CONFIRMATION",
        ),
        revoke=RevokeActivity(source="FORM", updated_date=None),
        extended_fields={"namespaces": {"n": [1, 2.5, None, True]}},
    )
    assert json.loads(change_json(change)) == {
        "state": "CONFIRMED",
        "confirmation": {
            "source": "FORM",
            "description": 'said "yes" — twice\n',
            "updated_date": "2024-05-01T10:11:12.123Z",
            "opt_in_level": "SINGLE_CONFIRMATION",
        },
        "revoke": {"source": "FORM", "description": "", "updated_date": None},
        "extended_fields": {"namespaces": {"n": [1, 2.5, None, True]}},
    }
    assert change_json(change) == to_json(change.as_json())
