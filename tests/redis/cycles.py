"""Watching a Redis worker's hot path in tests: what each ``cycle`` call (record outcomes, claim more) was given."""

from __future__ import annotations

from typing import Any

from jobqueue_redis import RedisBackend


def record_cycles(backend: RedisBackend, on_loop: list[bool] | None = None) -> list[tuple[int, int]]:
    """Wrap ``backend.cycle`` and ``backend.acycle`` (the event loop's, for ``async def`` jobs); each call appends
    (outcomes it records, jobs it asks to claim) to the list returned, and whether it was the loop's to ``on_loop``."""
    calls: list[tuple[int, int]] = []
    real, areal = backend.cycle, backend.acycle

    def cycle(queue: str, finished: Any, count: int, prefix: str) -> Any:
        calls.append((len(finished), count))
        if on_loop is not None:
            on_loop.append(False)
        return real(queue, finished, count, prefix)

    async def acycle(queue: str, finished: Any, count: int, prefix: str) -> Any:
        calls.append((len(finished), count))
        if on_loop is not None:
            on_loop.append(True)
        return await areal(queue, finished, count, prefix)

    backend.cycle = cycle  # type: ignore[method-assign]
    backend.acycle = acycle  # type: ignore[method-assign]
    return calls
