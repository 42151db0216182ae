"""The tokens a gateway process takes ahead of its callers' requests (plain logic)."""

import pytest

from gateway.rate_limit import MOST_TAKEN_AHEAD, TakenAhead, taken_at_once


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kept_tokens_are_taken_one_by_one_until_none_is_left():
    ahead = TakenAhead(kept_for=1.0, clock=Clock())
    ahead.keep("staff:7", 3)

    assert [ahead.take("staff:7") for _ in range(4)] == [True, True, True, False]
    assert ahead.take("staff:8") is False  # another caller's bucket has none
    assert len(ahead) == 0


def test_kept_tokens_run_out_of_time():
    clock = Clock()
    ahead = TakenAhead(kept_for=1.0, clock=clock)
    ahead.keep("staff:7", 5)
    assert ahead.take("staff:7")

    clock.now += 1.0
    assert ahead.take("staff:7") is False
    assert len(ahead) == 0


def test_two_checks_that_took_tokens_at_once_keep_both_lots():
    clock = Clock()
    ahead = TakenAhead(kept_for=1.0, clock=clock)
    ahead.keep("staff:7", 2)
    ahead.keep("staff:7", 3)
    assert sum(ahead.take("staff:7") for _ in range(10)) == 5

    ahead.keep("staff:7", 2)
    clock.now += 1.5  # those ran out of time: not added to the next lot
    ahead.keep("staff:7", 1)
    assert sum(ahead.take("staff:7") for _ in range(10)) == 1


def test_buckets_whose_tokens_ran_out_of_time_are_forgotten():
    clock = Clock()
    ahead = TakenAhead(kept_for=1.0, clock=clock)
    for caller in range(TakenAhead.SWEEP_ABOVE):
        ahead.keep(f"staff:{caller}", 2)
    clock.now += 2
    ahead.keep("staff:new", 2)

    assert len(ahead) == 1
    assert ahead.take("staff:new")


def test_a_few_tokens_at_once_only_for_limits_high_enough():
    assert taken_at_once(rate=100, burst=200) == MOST_TAKEN_AHEAD  # the per-token default
    assert taken_at_once(rate=1_000_000, burst=1_000_000) == MOST_TAKEN_AHEAD
    assert taken_at_once(rate=50, burst=30) == 3  # a tenth of the burst
    assert taken_at_once(rate=30, burst=200) == 3  # a tenth of a second's worth
    assert taken_at_once(rate=10, burst=50) == 1  # the per-address default: every request
    assert taken_at_once(rate=2, burst=5) == 1


def test_an_empty_bucket_is_known_empty_until_a_token_has_refilled():
    clock = Clock()
    ahead = TakenAhead(kept_for=1.0, clock=clock)
    ahead.note_empty("addr:10.0.0.9", 0.1)

    assert ahead.empty_for("addr:10.0.0.9") == pytest.approx(0.1)
    assert ahead.take("addr:10.0.0.9") is False
    assert ahead.empty_for("addr:10.0.0.8") == 0.0
    clock.now += 0.1
    assert ahead.empty_for("addr:10.0.0.9") == 0.0
    ahead.keep("addr:10.0.0.9", 2)  # tokens again: not empty
    assert ahead.empty_for("addr:10.0.0.9") == 0.0
    assert ahead.take("addr:10.0.0.9")
