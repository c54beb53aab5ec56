"""The context a handler receives: who it is, which attempt, progress, cancellation."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any, Protocol

from jobqueue.envelope import Envelope
from jobqueue.errors import JobCancelled

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.status import JobStatus
    from jobqueue.workflows.group import GroupResults


class AttemptSink(Protocol):
    """The part of a backend a running attempt talks to."""

    def set_progress(self, envelope: Envelope, value: float) -> None: ...

    def is_cancel_requested(self, envelope: Envelope) -> bool: ...


class JobContext:
    """Passed to a handler as its second argument.

    ``logger``: the handler's logger; or ``None`` with ``job_logger``, and the context builds an adapter of
    ``job_logger`` that adds the job id and attempt on first use (most handlers never log).
    """

    def __init__(
        self,
        envelope: Envelope,
        sink: AttemptSink,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None,
        app: JobQueue | None = None,
        *,
        job_logger: logging.Logger | None = None,
    ) -> None:
        if logger is None and job_logger is None:
            raise TypeError("JobContext needs a logger or a job_logger")
        # the same fields as attempt_context sets
        self._envelope = envelope
        self._sink = sink
        self._logger = logger
        self._job_logger = job_logger
        self._app = app

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """This job's logger; records carry ``job_id`` and ``attempt``."""
        if self._logger is None:
            assert self._job_logger is not None
            extra = {"job_id": self._envelope.id, "attempt": self._envelope.attempt}
            self._logger = logging.LoggerAdapter(self._job_logger, extra)
        return self._logger

    @logger.setter
    def logger(self, value: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        self._logger = value

    @property
    def job_id(self) -> str:
        return self._envelope.id

    @property
    def name(self) -> str:
        return self._envelope.name

    @property
    def queue(self) -> str:
        return self._envelope.queue

    @property
    def attempt(self) -> int:
        """1 on the first try, 2 on the first retry, ..."""
        return self._envelope.attempt

    @property
    def max_attempts(self) -> int:
        return self._envelope.max_attempts

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job; a handler should stop soon."""
        return self._sink.is_cancel_requested(self._envelope)

    def parents(self) -> dict[str, JobStatus | None]:
        """The jobs this one depended on (``_depends_on``), by id: their status now (None once not retained)."""
        refs = self._envelope.depends_on
        statuses = self._workflow_app().workflows.statuses(refs) if refs else []
        return {ref.id: status for ref, status in zip(refs, statuses)}

    @property
    def parent_results(self) -> dict[str, Any]:
        """The results of the jobs this one depended on, by parent id."""
        return {job_id: status.result for job_id, status in self.parents().items() if status is not None}

    def group_results(self) -> GroupResults:
        """In a group's callback: every member as it ended (``.results``, ``.failures``, ``.statuses``)."""
        from jobqueue.workflows.group import read_group_results

        group = self._envelope.callback_of
        if group is None:
            raise RuntimeError(f"job {self.job_id!r} is not the callback of a group")
        return read_group_results(self._workflow_app().workflows, group)

    def _workflow_app(self) -> JobQueue:
        if self._app is None:
            raise RuntimeError("this context has no app (made by hand?): parents and group results are unavailable")
        return self._app

    def progress(self, value: float) -> None:
        """Record progress, 0..100. Raises :class:`JobCancelled` if the job was cancelled."""
        checked = _check_progress(value)
        if self.cancelled:
            raise JobCancelled(f"job {self.job_id!r} was cancelled")
        self._sink.set_progress(self._envelope, checked)

    async def aprogress(self, value: float) -> None:
        """:meth:`progress` without blocking the event loop on a network backend."""
        await asyncio.to_thread(self.progress, value)


_new_object = object.__new__


def attempt_context(envelope: Envelope, sink: AttemptSink, app: JobQueue | None, job_logger: logging.Logger) -> JobContext:
    """``JobContext(envelope, sink, None, app, job_logger=job_logger)``, the context the runner makes for each
    attempt, without the call's keyword and argument checks (it runs once per job)."""
    ctx: JobContext = _new_object(JobContext)
    ctx._envelope = envelope
    ctx._sink = sink
    ctx._logger = None
    ctx._job_logger = job_logger
    ctx._app = app
    return ctx


def _check_progress(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"progress must be a number from 0 to 100, not {value!r}")
    if not 0 <= value <= 100:
        raise ValueError(f"progress must be from 0 to 100, not {value!r}")
    return float(value)
