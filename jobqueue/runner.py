"""The one code path that runs an attempt, shared by every backend.

A backend claims a job (marks it active), hands its envelope to :meth:`JobRunner.execute`
with a sink, and the runner validates, calls the handler, decides the outcome by the job's
policy (completed, retry later, failed, cancelled), asks the sink to persist it and fires hooks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from pydantic import BaseModel

from jobqueue import telemetry
from jobqueue.context import AttemptSink, JobContext, attempt_context
from jobqueue.envelope import ENVELOPE_VERSION, Envelope, check_version
from jobqueue.errors import InvalidPayload, JobCancelled, ResultNotSerializable, Retry, UnknownJob, UnsupportedEnvelope
from jobqueue.hooks import HookName, JobEvent
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo
from jobqueue.watchdog import DeadlineExceeded, OuterDeadlineExceeded
from jobqueue.watchdog import shared as shared_watchdog

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.job import JobDefinition

logger = logging.getLogger("jobqueue.runner")

MAX_TRACEBACK_CHARS = 32_000

_EVENT_OF: dict[JobState, HookName] = {
    JobState.COMPLETED: "job_completed",
    JobState.DELAYED: "attempt_failed",
    JobState.FAILED: "job_failed",
    JobState.CANCELLED: "job_cancelled",
}


class Outcome(NamedTuple):
    """How an attempt ended: ``completed``, ``delayed`` (retry at ``retry_at``), ``failed`` or ``cancelled``.

    Immutable; read it by field name (a named tuple: a fifth of a frozen dataclass's cost to build, and the
    worker builds one per attempt).
    """

    state: JobState
    result: Any = None
    error: ErrorInfo | None = None
    retry_at: float | None = None
    duration: float = 0.0


_COMPLETED = JobState.COMPLETED
_new_tuple = tuple.__new__
_perf_counter = time.perf_counter


def _completed(result: Any, duration: float) -> Outcome:
    """``Outcome(JobState.COMPLETED, result=result, duration=duration)``, built without the keyword call."""
    outcome: Outcome = _new_tuple(Outcome, (_COMPLETED, result, None, None, duration))
    return outcome


class FinishingSink(AttemptSink, Protocol):
    """A sink that also persists the outcome. ``finish`` returns False if the job was no longer ours.

    A sink may also have ``after_finish(envelope)``: called once the outcome is kept and the hooks have
    fired (the in-process backends tell dependents and groups there, so events keep their order).
    """

    def finish(self, envelope: Envelope, outcome: Outcome) -> bool: ...


class JobTimeout(TimeoutError):
    """The attempt ran longer than the job's timeout."""


def error_info(exc: BaseException, *, retryable: bool = True, with_traceback: bool = True) -> ErrorInfo:
    """An :class:`ErrorInfo` for ``exc``, traceback trimmed to a bounded size."""
    text = None
    if with_traceback:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if len(text) > MAX_TRACEBACK_CHARS:
            text = "...(truncated)...\n" + text[-MAX_TRACEBACK_CHARS:]
    return ErrorInfo(type=type(exc).__qualname__, message=str(exc)[:4000], traceback=text, retryable=retryable)


def _refused(exc: BaseException) -> Outcome:
    """The failed outcome of an attempt that could not start (no retry: the same envelope would fail the same way)."""
    return Outcome(JobState.FAILED, error=error_info(exc, retryable=False, with_traceback=False))


def _interrupted() -> Outcome:
    """The outcome of an attempt cut short because the job that ran it inline passed its own deadline."""
    error = ErrorInfo(
        type=JobTimeout.__qualname__, retryable=False,
        message="interrupted: the job that ran this one inline ran past its own timeout",
    )
    return Outcome(JobState.FAILED, error=error)


def encode_result(value: Any, job_name: str) -> Any:
    """``value`` as JSON-native data, or :class:`ResultNotSerializable` naming the job."""
    if value is None or type(value) in (str, int, bool):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ResultNotSerializable(f"result of job {job_name!r} is not JSON-serialisable: {exc}") from None


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion from synchronous code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="jobqueue-async-job")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _call_with_timeout(func: Any, timeout: float, name: str) -> Any:
    """Run ``func`` in a daemon thread; past ``timeout`` give up on it (the thread is abandoned)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"jobqueue-job-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise JobTimeout(f"job {name!r} ran longer than its timeout of {timeout:g}s; its thread was abandoned")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class JobRunner:
    """Runs attempts for one app: resolves the handler, applies the policy, persists, fires hooks."""

    def __init__(self, app: JobQueue) -> None:
        self.app = app
        self._loggers: dict[str, logging.Logger] = {}

    # -- the steps every attempt takes ---------------------------------------------------

    def _prepare(self, envelope: Envelope) -> tuple[JobDefinition[Any], BaseModel | None] | Outcome:
        try:
            check_version(envelope)
            job = self.app.registry.get(envelope.name)
            if job is None:
                raise UnknownJob(f"no handler is registered for job name {envelope.name!r} (known: {', '.join(sorted(self.app.registry)) or 'none'})")
            payload = job.validate_payload(envelope.payload)
        except (UnsupportedEnvelope, UnknownJob, InvalidPayload) as exc:
            return _refused(exc)
        return job, payload

    def _job_logger(self, name: str) -> logging.Logger:
        job_logger = self._loggers.get(name)
        if job_logger is None:
            job_logger = self._loggers[name] = logging.getLogger(f"jobqueue.job.{name}")
        return job_logger

    def _context(self, envelope: Envelope, sink: AttemptSink) -> JobContext:
        return attempt_context(envelope, sink, self.app, self._job_logger(envelope.name))  # its adapter is built on first use

    def _outcome_for_error(self, envelope: Envelope, job: JobDefinition[Any] | None, exc: BaseException, started: float) -> Outcome:
        duration = _perf_counter() - started
        if isinstance(exc, JobCancelled):
            return Outcome(JobState.CANCELLED, error=error_info(exc, retryable=False, with_traceback=False), duration=duration)
        retryable = isinstance(exc, (Retry, ResultNotSerializable, JobTimeout)) or (job is not None and job.should_retry(exc))
        info = error_info(exc, retryable=retryable)
        if retryable and envelope.attempt < envelope.max_attempts:
            if isinstance(exc, Retry) and exc.delay is not None:
                delay = max(float(exc.delay), 0.0)
            else:
                delay = envelope.backoff.delay_for(envelope.attempt)
            return Outcome(JobState.DELAYED, error=info, retry_at=self.app.clock.now() + delay, duration=duration)
        return Outcome(JobState.FAILED, error=info, duration=duration)

    def _finish(self, envelope: Envelope, outcome: Outcome, sink: FinishingSink) -> Outcome:
        try:
            kept = sink.finish(envelope, outcome)
        except Exception:
            logger.exception("could not record the outcome of job %s (attempt %d); it will be delivered again", envelope.id, envelope.attempt)
            raise
        self.settle(envelope, outcome, kept)
        after_finish = getattr(sink, "after_finish", None)
        if kept and after_finish is not None:
            after_finish(envelope)
        return outcome

    def settle(self, envelope: Envelope, outcome: Outcome, kept: bool) -> Outcome:
        """After the outcome was recorded (``kept``) or refused (the lease was lost): log, fire the hooks."""
        if not kept:
            logger.warning("job %s: the lease was lost before attempt %d finished; its outcome was not written", envelope.id, envelope.attempt)
            return outcome
        state = outcome.state
        kind: HookName = "job_completed" if state is _COMPLETED else _EVENT_OF[state]
        hooks = self.app.hooks
        if hooks.wants(kind, envelope):
            hooks.emit(JobEvent(kind, envelope, outcome.result, outcome.error, outcome.retry_at, outcome.duration))
        return outcome

    # -- synchronous and asynchronous entry points -------------------------------------------

    def execute(self, envelope: Envelope, sink: FinishingSink) -> Outcome:
        """Run one attempt of ``envelope`` (already claimed as active) and persist its outcome."""
        if not telemetry.tracing(self.app):  # no span would be recorded: skip its context manager
            return self._execute(envelope, sink)
        return self._traced(envelope, self._execute, sink)

    async def aexecute(self, envelope: Envelope, sink: FinishingSink) -> Outcome:
        """:meth:`execute` on an event loop: ``async def`` handlers are awaited, ``def`` ones run in a thread."""
        if not telemetry.tracing(self.app):
            return await self._aexecute(envelope, sink)
        return await self._atraced(envelope, self._aexecute, sink)

    async def aattempt(self, envelope: Envelope, sink: AttemptSink) -> Outcome:
        """:meth:`attempt` on an event loop: the outcome is decided, not recorded (the caller records it, then
        calls :meth:`settle`)."""
        if not telemetry.tracing(self.app):
            return await self._aattempt(envelope, sink)
        return await self._atraced(envelope, self._aattempt, sink)

    def _traced(self, envelope: Envelope, run: Callable[[Envelope, Any], Outcome], sink: Any) -> Outcome:
        """``run(envelope, sink)`` inside the attempt's span, its outcome recorded on it."""
        with telemetry.job_span(self.app, envelope) as span:
            outcome = run(envelope, sink)
            telemetry.record_outcome(span, outcome.state.value, outcome.error)
            return outcome

    async def _atraced(self, envelope: Envelope, run: Callable[[Envelope, Any], Awaitable[Outcome]], sink: Any) -> Outcome:
        """:meth:`_traced` for a coroutine method."""
        with telemetry.job_span(self.app, envelope) as span:
            outcome = await run(envelope, sink)
            telemetry.record_outcome(span, outcome.state.value, outcome.error)
            return outcome

    def _begin(self, envelope: Envelope, sink: AttemptSink) -> tuple[JobDefinition[Any], BaseModel | None, JobContext] | Outcome:
        """Resolve and validate, then announce the start; an :class:`Outcome` if the job cannot start."""
        job = self.app.registry.get(envelope.name)
        if job is None or envelope.v > ENVELOPE_VERSION:  # cannot start, most likely: _prepare says why
            prepared = self._prepare(envelope)
            if isinstance(prepared, Outcome):
                return prepared
            job, payload = prepared
        else:  # the usual case (once per attempt on every backend): only the payload is left to check
            try:
                payload = job.validate_payload(envelope.payload)
            except InvalidPayload as exc:
                return _refused(exc)
        hooks = self.app.hooks
        if hooks.wants("job_started"):
            hooks.emit(JobEvent("job_started", envelope))
        return job, payload, self._context(envelope, sink)

    def attempt(self, envelope: Envelope, sink: AttemptSink) -> Outcome:
        """Run one attempt of ``envelope`` (already claimed) and decide its outcome, without recording it.

        The caller records the outcome, then calls :meth:`settle` (a worker that batches its writes).
        """
        if not telemetry.tracing(self.app):
            return self._attempt(envelope, sink)
        return self._traced(envelope, self._attempt, sink)

    def _execute(self, envelope: Envelope, sink: FinishingSink) -> Outcome:
        try:
            outcome = self._attempt(envelope, sink)
        except OuterDeadlineExceeded:  # run inline by a job that passed its deadline: it ends here, failed, and
            self._finish(envelope, _interrupted(), sink)  # the interruption goes on up to that job
            raise
        return self._finish(envelope, outcome, sink)

    def _attempt(self, envelope: Envelope, sink: AttemptSink) -> Outcome:
        begun = self._begin(envelope, sink)
        if isinstance(begun, Outcome):
            return begun
        job, payload, ctx = begun
        started = _perf_counter()
        try:
            if job.is_async:
                value = _run_coroutine(self._bounded(job.invoke(payload, ctx), envelope.timeout, job.name))
            elif envelope.timeout is not None:
                value = _call_with_timeout(lambda: job.invoke(payload, ctx), envelope.timeout, job.name)
            elif (default := self.app.settings.default_timeout) is not None:
                value = self._call_watched(job, payload, ctx, default)
            else:
                value = job.invoke(payload, ctx)
            return _completed(value if value is None else encode_result(value, job.name), _perf_counter() - started)
        except Exception as exc:
            return self._outcome_for_error(envelope, job, exc, started)

    def _call_watched(self, job: JobDefinition[Any], payload: BaseModel | None, ctx: JobContext, seconds: float) -> Any:
        """A ``def`` job without a timeout of its own, in this thread, under JOBQUEUE_DEFAULT_TIMEOUT (see jobqueue.watchdog)."""
        try:
            return shared_watchdog().call(job.invoke, (payload, ctx), seconds)
        except DeadlineExceeded:
            raise JobTimeout(f"job {job.name!r} ran longer than {_default_timeout(seconds)} and was interrupted") from None

    def _bounded(self, awaitable: Any, timeout: float | None, name: str) -> Any:
        """``awaitable`` under the job's timeout, else JOBQUEUE_DEFAULT_TIMEOUT (or none)."""
        if timeout is not None:
            return _with_timeout(awaitable, timeout, name)
        default = self.app.settings.default_timeout
        return awaitable if default is None else _with_timeout(awaitable, default, name, default=True)

    async def _aexecute(self, envelope: Envelope, sink: FinishingSink) -> Outcome:
        outcome = await self._aattempt(envelope, sink)
        return await asyncio.to_thread(self._finish, envelope, outcome, sink)

    async def _aattempt(self, envelope: Envelope, sink: AttemptSink) -> Outcome:
        begun = self._begin(envelope, sink)
        if isinstance(begun, Outcome):
            return begun
        job, payload, ctx = begun
        started = _perf_counter()
        try:
            if job.is_async:
                value = await self._bounded(job.invoke(payload, ctx), envelope.timeout, job.name)
            else:
                value = await self._bounded(asyncio.to_thread(job.invoke, payload, ctx), envelope.timeout, job.name)
            return _completed(value if value is None else encode_result(value, job.name), _perf_counter() - started)
        except Exception as exc:
            return self._outcome_for_error(envelope, job, exc, started)


def _default_timeout(seconds: float) -> str:
    return f"the default timeout of {seconds:g}s (JOBQUEUE_DEFAULT_TIMEOUT)"


async def _with_timeout(awaitable: Any, timeout: float, name: str, *, default: bool = False) -> Any:
    """``awaitable`` cancelled after ``timeout`` seconds (the job's; ``default``: JOBQUEUE_DEFAULT_TIMEOUT's)."""
    deadline = asyncio.timeout(timeout)  # a timer handle, without wait_for's task
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if not deadline.expired():  # the job's own TimeoutError (a client's, say) is the job's error
            raise
        which = _default_timeout(timeout) if default else f"its timeout of {timeout:g}s"
        raise JobTimeout(f"job {name!r} ran longer than {which} and was cancelled") from None
