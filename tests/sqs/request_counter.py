"""AWS requests made through boto3 clients, by service and operation, with the time they took (botocore event hooks)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RequestCounter:
    """Counts each request of the clients given to :meth:`watch` as ``"{service}.{operation}"``, and its seconds."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started = threading.local()

    def watch(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self._started.at = time.perf_counter()

    def _after(self, model: Any, **_: Any) -> None:
        took = time.perf_counter() - getattr(self._started, "at", time.perf_counter())
        name = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            self.counts[name] += 1
            self.seconds[name] += took

    @contextmanager
    def step(self) -> Iterator[Counter[str]]:
        """The requests made inside the ``with`` block, filled in when it ends."""
        before = Counter(self.counts)
        seen: Counter[str] = Counter()
        yield seen
        seen.update(self.counts - before)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{operation: {"count": n, "seconds": s}}``, the most requested first."""
        with self._lock:
            return {name: {"count": n, "seconds": round(self.seconds[name], 3)} for name, n in self.counts.most_common()}
