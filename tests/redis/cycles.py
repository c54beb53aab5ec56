"""Watching a Redis worker's hot path in tests: what each ``cycle`` call (record outcomes, claim more) was given."""

from __future__ import annotations

from typing import Any

from jobqueue_redis import RedisBackend


def record_cycles(backend: RedisBackend) -> list[tuple[int, int]]:
    """Wrap ``backend.cycle``; each call appends (outcomes it records, jobs it asks to claim) to the list returned."""
    calls: list[tuple[int, int]] = []
    real = backend.cycle

    def cycle(queue: str, finished: Any, count: int, prefix: str) -> Any:
        calls.append((len(finished), count))
        return real(queue, finished, count, prefix)

    backend.cycle = cycle  # type: ignore[method-assign]
    return calls
