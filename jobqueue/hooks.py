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

    def add(self, name: HookName, hook: Hook) -> Hook:
        if name not in self._hooks:
            raise ValueError(f"unknown hook {name!r}; known: {', '.join(HOOK_NAMES)}")
        self._hooks[name].append(hook)
        return hook

    def wants(self, name: HookName) -> bool:
        """Whether any hook listens to ``name`` (so an event need not even be built)."""
        return bool(self._hooks[name])

    def emit(self, event: JobEvent) -> None:
        for hook in self._hooks[event.kind]:
            try:
                hook(event)
            except Exception:
                logger.exception("hook %s for job %s raised; ignored", getattr(hook, "__name__", hook), event.job_id)
