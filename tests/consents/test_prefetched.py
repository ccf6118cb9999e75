"""The bulk commands read their next batch in a background thread (`prefetched`): the order,
the errors and an early stop must be as if the items were read in place."""

import threading

import pytest

from consents.management.batch import prefetched


def test_items_arrive_in_order():
    assert list(prefetched(iter(range(50)), ahead=3)) == list(range(50))


def test_an_error_of_the_producer_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("line 3 is broken")

    received = []
    with pytest.raises(ValueError, match="line 3 is broken"):
        for item in prefetched(items()):
            received.append(item)
    assert received == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def items():
        for n in range(1000):
            produced.append(n)
            yield n

    for item in prefetched(items(), ahead=1):
        if item == 2:
            break
    assert not any(thread.name == "prefetch" for thread in threading.enumerate())
    assert len(produced) <= 5
