"""Exponential backoff with jitter, the policy of the Rust SDK and the
services (100 ms doubling to 5 s, jittered)."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``; each delay is
    drawn uniformly from the upper half of its step ("equal jitter"), so
    clients that failed together do not reconnect together, and no delay
    is shorter than half its step. :meth:`reset` starts over (after
    progress)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff: need 0 < initial <= maximum")
        self._initial = initial
        self._maximum = maximum
        self._step = initial
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The next delay, in seconds."""
        step = self._step
        self._step = min(self._step * 2, self._maximum)
        return step / 2 + self._rng.uniform(0, step / 2)

    def reset(self) -> None:
        """Starts again from the initial delay."""
        self._step = self._initial
