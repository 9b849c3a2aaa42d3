"""Retry decisions as a pure function of (retries so far, record age, policy)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Jitter = Literal["none", "full", "equal"]


def backoff(
    attempt: int, base: float, cap: float, jitter: Jitter = "none", rng: random.Random | None = None
) -> float:
    """Seconds to wait before try `attempt + 1`: base * 2**attempt, at most `cap`.

    Jitter spreads clients that failed together: "full" waits uniform(0, d) (AWS's advice for retries),
    "equal" uniform(d/2, d) (the wait still visibly grows), "none" exactly d (reconnect and poll loops).
    """
    delay = min(cap, base * 2.0 ** min(max(attempt, 0), 62))
    if jitter == "full":
        return (rng or random).uniform(0, delay)
    if jitter == "equal":
        return (rng or random).uniform(delay / 2, delay)
    return delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed batch is retried, and after how long."""

    # -1 means retry until the record age limit (Lambda's default for streams).
    maximum_retry_attempts: int
    # Seconds; -1 means no age limit.
    maximum_record_age: float = -1
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    bisect_on_error: bool = False
    # Lambda names the give-up condition differently for async invocations and for streams.
    attempts_condition: str = "RetriesExhausted"
    age_condition: str = "EventAgeExceeded"

    def backoff(self, retries_done: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter: uniform(0, min(max, base * 2**retries_done))."""
        return backoff(retries_done, self.backoff_base, self.backoff_max, "full", rng)


@dataclass(frozen=True, slots=True)
class Retry:
    """Invoke again after `delay` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop retrying; `condition` goes into the on-failure record."""

    condition: str


def is_too_old(policy: RetryPolicy, oldest_arrival: float, now: float) -> bool:
    """True when the oldest record is past `maximum_record_age` and must not be invoked again."""
    return policy.maximum_record_age >= 0 and now - oldest_arrival > policy.maximum_record_age


def decide(
    policy: RetryPolicy,
    retries_done: int,
    oldest_arrival: float,
    now: float,
    rng: random.Random | None = None,
) -> Retry | GiveUp:
    """Decide what happens after a failed attempt, given how many retries were already made."""
    if is_too_old(policy, oldest_arrival, now):
        return GiveUp(policy.age_condition)
    if policy.maximum_retry_attempts >= 0 and retries_done >= policy.maximum_retry_attempts:
        return GiveUp(policy.attempts_condition)
    delay = policy.backoff(retries_done, rng)
    if policy.maximum_record_age >= 0:
        # Never sleep past the age limit only to give up on waking.
        delay = min(delay, max(0.0, oldest_arrival + policy.maximum_record_age - now))
    return Retry(delay)
