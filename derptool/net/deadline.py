"""A point in time by which a whole network conversation must be done: the one deadline of derptool's I/O.

A socket or httpx timeout bounds one read; a peer that sends a byte just before each read times out keeps the
reader going forever. Code that talks to the network takes a :class:`Deadline` and gives each step only the
time left (``DeadlineStream`` for raw sockets, :func:`derptool.net.http.get` for HTTP).
"""

from __future__ import annotations

import math
import time


class Deadline:
    """A point in time (monotonic clock) by which something must be done."""

    def __init__(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError("a deadline needs a positive number of seconds")
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (0 or less when passed)."""
        return self.at - time.monotonic()

    def remaining(self) -> float:
        """Seconds left; raises ``TimeoutError`` when the deadline has passed."""
        left = self.left()
        if left <= 0:
            raise TimeoutError(f"no answer within {self.seconds:g} s")
        return left

    @property
    def expired(self) -> bool:
        return self.left() <= 0

    def within(self, seconds: float) -> Deadline:
        """A deadline *seconds* from now, or this one if it comes sooner."""
        sooner = Deadline(max(seconds, 1e-6))
        if self.at < sooner.at:
            return self
        return sooner
