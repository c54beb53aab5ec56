"""Lifecycle hooks: job started, completed, attempt failed (will retry), failed, cancelled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from jobqueue.envelope import Envelope
from jobqueue.status import ErrorInfo

logger = logging.getLogger("jobqueue.hooks")

HookName = Literal["job_started", "job_completed", "attempt_failed", "job_failed", "job_cancelled"]
HOOK_NAMES: tuple[HookName, ...] = ("job_started", "job_completed", "attempt_failed", "job_failed", "job_cancelled")


@dataclass(frozen=True)
class JobEvent:
    """What a hook receives: which job, which attempt, and how it went."""

    kind: HookName
    envelope: Envelope
    result: Any = None
    error: ErrorInfo | None = None
    retry_at: float | None = None
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.envelope.id


Hook = Callable[[JobEvent], object]


class Hooks:
    """Named lists of callables. A hook that raises is logged and never breaks the job."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_NAMES}
        #: per hook name, the hooks' filters (None: the hook wants every job's events)
        self._filters: dict[str, list[Callable[[Envelope], bool] | None]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: HookName, hook: Hook, *, applies: Callable[[Envelope], bool] | None = None) -> Hook:
        """Call ``hook`` with every ``name`` event; ``applies``, if given, tells for which jobs the hook may care
        (an event no hook may care about is not built: see :meth:`wants`). The hook still gets every event."""
        if name not in self._hooks:
            raise ValueError(f"unknown hook {name!r}; known: {', '.join(HOOK_NAMES)}")
        self._hooks[name].append(hook)
        self._filters[name].append(applies)
        return hook

    def wants(self, name: HookName, envelope: Envelope | None = None) -> bool:
        """Whether any hook listens to ``name`` (for ``envelope``'s job, if given), so an event need not even be built."""
        filters = self._filters[name]
        if envelope is None or not filters:
            return bool(filters)
        return any(applies is None or applies(envelope) for applies in filters)

    def emit(self, event: JobEvent) -> None:
        for hook in self._hooks[event.kind]:
            try:
                hook(event)
            except Exception:
                logger.exception("hook %s for job %s raised; ignored", getattr(hook, "__name__", hook), event.job_id)
