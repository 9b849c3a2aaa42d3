"""Retry decisions and backoff as pure functions of (retries so far, record age, policy)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipelined.core.retry import GiveUp, Retry, RetryPolicy, backoff, decide, is_too_old

STREAM = RetryPolicy(
    maximum_retry_attempts=3,
    maximum_record_age=120,
    backoff_base=1,
    backoff_max=60,
    attempts_condition="RetryAttemptsExhausted",
    age_condition="RecordAgeExceeded",
)


def test_retries_until_the_attempts_are_used_then_gives_up_with_the_policys_condition() -> None:
    now = 1000.0
    assert all(isinstance(decide(STREAM, n, now, now), Retry) for n in range(3))
    assert decide(STREAM, 3, now, now) == GiveUp("RetryAttemptsExhausted")
    asynchronous = RetryPolicy(maximum_retry_attempts=2)
    assert decide(asynchronous, 2, now, now) == GiveUp("RetriesExhausted")


def test_a_record_past_its_age_limit_gives_up_before_attempts_run_out() -> None:
    assert decide(STREAM, 0, 1000.0, 1121.0) == GiveUp("RecordAgeExceeded")
    assert is_too_old(STREAM, 1000.0, 1121.0) and not is_too_old(STREAM, 1000.0, 1119.0)


def test_minus_one_retries_forever_and_never_ages_out() -> None:
    forever = RetryPolicy(maximum_retry_attempts=-1, maximum_record_age=-1, backoff_max=5)
    decision = decide(forever, 10_000, 0.0, 10.0**9)
    assert isinstance(decision, Retry) and 0 <= decision.delay <= 5


def test_the_wait_never_runs_past_the_age_limit() -> None:
    # 100 s old with a 120 s limit: whatever the backoff draws, sleep at most the 20 s left.
    patient = RetryPolicy(maximum_retry_attempts=20, maximum_record_age=120, backoff_max=300)
    for seed in range(50):
        decision = decide(patient, 8, 1000.0, 1100.0, random.Random(seed))
        assert isinstance(decision, Retry) and decision.delay <= 20.0 + 1e-9


@given(st.integers(min_value=0, max_value=200), st.floats(0.001, 10), st.floats(0.001, 1000))
def test_backoff_grows_by_doubling_up_to_its_cap_and_jitter_stays_in_range(
    attempt: int, base: float, cap: float
) -> None:
    exact = backoff(attempt, base, cap)
    assert exact == min(cap, base * 2.0 ** min(attempt, 62))
    rng = random.Random(attempt)
    assert 0 <= backoff(attempt, base, cap, "full", rng) <= exact
    assert exact / 2 <= backoff(attempt, base, cap, "equal", rng) <= exact


def test_policy_backoff_is_full_jitter_over_its_base_and_max() -> None:
    policy = RetryPolicy(maximum_retry_attempts=5, backoff_base=2, backoff_max=10)
    draws = [policy.backoff(4, random.Random(seed)) for seed in range(200)]
    assert max(draws) <= 10 and min(draws) >= 0
    assert max(draws) > 8 and min(draws) < 2  # spread over the whole range, not a fixed wait
