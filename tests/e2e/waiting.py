"""Waiting on a condition with a deadline: the only way this suite waits.

A fixed sleep is either too short on a loaded machine (flaky) or too long everywhere (slow);
polling a condition until a deadline is neither."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a predicate when waiting longer cannot help (the server it waits for has exited).
    `wait_until` lets it through at once instead of polling until the deadline."""


class WaitTimeout(AssertionError):
    """Raised when a condition did not hold in time. An AssertionError, so pytest reports it as a
    test failure with the message that says what was awaited."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str,
    interval: float = 0.02,
    max_interval: float = 0.25,
) -> T:
    """Call `predicate` until it returns a truthy value, and return that value.

    Exceptions raised by the predicate count as "not yet" (a server still starting refuses
    connections), except `GiveUp`, which ends the wait at once; the last one is shown if the
    deadline passes. The poll interval grows from
    `interval` to `max_interval` so quick conditions are seen quickly and slow ones cost little."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_value = value
        except GiveUp:
            raise
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {message} ({detail})")
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, max_interval)
