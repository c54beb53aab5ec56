"""``JobQueue``: where jobs and queues are declared, and the door to the backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from pydantic import BaseModel

from jobqueue.backends import create_backend
from jobqueue.backends.base import Backend
from jobqueue.clock import Clock, SystemClock
from jobqueue.envelope import Envelope
from jobqueue.errors import ConfigurationError, UnknownJob
from jobqueue.handle import JobHandle
from jobqueue.hooks import Hook, HookName, Hooks
from jobqueue.job import JobDefinition
from jobqueue.options import Backoff, Duration, QueueConfig, RateLimit, Retention, parse_duration
from jobqueue.settings import Settings
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt, Health, JobPage, JobStatus, QueueStats, Throughput

if TYPE_CHECKING:
    # schedules (cron, time zones, the ticker) and workflows (dependencies, groups) load when an app first
    # uses them, not with every app
    from jobqueue.schedules.model import MissedPolicy, Schedule
    from jobqueue.schedules.registry import Schedules
    from jobqueue.workflows import Group, Signature, Workflows

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
WorkerHook = Callable[[], Any]


class JobQueue:
    """An application's jobs and queues, bound to one backend.

    The backend is built on first use, never at construction or import::

        app = JobQueue.from_env()            # JOBQUEUE_BACKEND, default "sync"
        app = JobQueue(backend="memory")
        app = JobQueue(backend=MyBackend())

    Without ``settings``, they are read from the environment once, here (so ``JobQueue(backend="redis")``
    finds ``REDIS_URL`` as ``from_env`` does); pass ``settings=Settings()`` to ignore the environment.
    """

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        **backend_options: Any,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.clock: Clock = clock or SystemClock()
        self.hooks = Hooks()
        self.registry: dict[str, JobDefinition[Any]] = {}
        self.queues: dict[str, QueueConfig] = {}
        #: ``"start"`` / ``"stop"``: callables a long-running worker calls (see :meth:`on_worker_start`)
        self.worker_hooks: dict[str, list[WorkerHook]] = {"start": [], "stop": []}
        self._schedules: Schedules | None = None
        self._backend_spec: str | Backend = backend if backend is not None else self.settings.backend
        self._backend_options = backend_options
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        #: an OpenTelemetry TracerProvider for job spans (None: the global one); see jobqueue.telemetry
        self.tracer_provider: Any = None
        from jobqueue.webhooks import Webhooks

        #: job events POSTed to URLs (queue ``webhook=``, job ``_webhook=``, ``JOBQUEUE_WEBHOOK_URL``)
        self.webhooks = Webhooks(self)
        self._workflows: Workflows | None = None

    @property
    def schedules(self) -> Schedules:
        """Code-defined schedules, and the dynamic ones through the backend's store (``add``/``remove``/``list``)."""
        if self._schedules is None:
            from jobqueue.schedules.registry import Schedules

            return self._build_once("_schedules", Schedules)
        return self._schedules

    @property
    def workflows(self) -> Workflows:
        """Dependencies and groups (see :meth:`group` and the ``_depends_on`` option)."""
        if self._workflows is None:
            from jobqueue.workflows import Workflows

            return self._build_once("_workflows", Workflows)
        return self._workflows

    def _build_once(self, attribute: str, build: Callable[[JobQueue], T]) -> T:
        """The part kept in ``attribute``, built by ``build(self)`` if it is not yet: once, even if two threads ask at once."""
        with self._lock:  # the builders take no lock themselves
            if getattr(self, attribute) is None:
                setattr(self, attribute, build(self))
            return cast(T, getattr(self, attribute))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, **overrides: Any) -> JobQueue:
        """Read settings from ``JOBQUEUE_*`` variables once; the backend is built on first use."""
        settings = Settings.from_env(environ, **overrides)
        return cls(settings=settings, clock=clock)

    # -- the backend ---------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The backend, built and bound on first access."""
        backend = self._backend
        if backend is None:
            with self._lock:
                if self._backend is None:
                    spec = self._backend_spec
                    built = create_backend(spec, **self._backend_options) if isinstance(spec, str) else spec
                    built.bind(self)
                    self._backend = built
                backend = self._backend
        return backend

    def set_backend(self, backend: str | Backend, **options: Any) -> None:
        """Choose another backend before first use (the CLI's ``--backend``)."""
        if self._backend is not None:
            raise ConfigurationError("the backend is already in use; choose it before the first enqueue or query")
        self._backend_spec = backend
        self._backend_options = options

    @property
    def backend_name(self) -> str:
        spec = self._backend_spec
        return spec if isinstance(spec, str) else spec.name

    def close(self) -> None:
        """Close the backend's connections (if it was built)."""
        if self._backend is not None:
            self._backend.close()

    # -- declaring ----------------------------------------------------------------------------

    def queue(
        self,
        name: str,
        *,
        attempts: int | None = None,
        backoff: Backoff | None = None,
        concurrency: int | None = None,
        rate_limit: str | RateLimit | None = None,
        retention: Retention | None = None,
        timeout: Duration | None = None,
        priority: int | None = None,
        webhook: str | None = None,
        concurrency_per_key: int | None = None,
        idempotency_window: Duration | None = None,
    ) -> QueueConfig:
        """Declare queue ``name`` and its defaults (attempts, backoff, concurrency, rate limit, retention, timeout).

        ``webhook``: a URL that gets a signed POST when a job of this queue completes or fails.
        ``concurrency_per_key``: at most this many active jobs per ``_concurrency_key`` (default 1).
        ``idempotency_window``: how long an ``_idempotency_key`` answers with its first job (default 24h).
        """
        values: dict[str, Any] = {"name": name, "attempts": attempts if attempts is not None else self.settings.default_attempts}
        if backoff is not None:
            values["backoff"] = backoff
        if concurrency is not None:
            values["concurrency"] = concurrency
        if rate_limit is not None:
            values["rate_limit"] = RateLimit.parse(rate_limit)
        if retention is not None:
            values["retention"] = retention
        if timeout is not None:
            values["timeout"] = parse_duration(timeout, what=f"queue {name!r} timeout")
        if priority is not None:
            values["priority"] = priority
        if webhook is not None:
            values["webhook"] = webhook
        if concurrency_per_key is not None:
            values["concurrency_per_key"] = concurrency_per_key
        if idempotency_window is not None:
            values["idempotency_window"] = parse_duration(idempotency_window, what=f"queue {name!r} idempotency_window")
        try:
            config = QueueConfig(**values)
        except ValueError as exc:
            raise ConfigurationError(f"queue {name!r}: {exc}") from None
        self.queues[name] = config
        if config.webhook is not None:
            self.webhooks.enable()
        return config

    def queue_config(self, name: str) -> QueueConfig:
        """The declared config of queue ``name``, or the defaults if it was never declared."""
        config = self.queues.get(name)
        if config is None:
            config = self.queue(name)
        return config

    @overload
    def job(self, func: F, /) -> JobDefinition[Any]: ...

    @overload
    def job(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        attempts: int | None = None,
        backoff: Backoff | None = None,
        timeout: Duration | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        cron: str | None = None,
        tz: str | None = None,
        missed: MissedPolicy = "skip",
        secret_fields: Iterable[str] = (),
    ) -> Callable[[F], JobDefinition[Any]]: ...

    def job(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        attempts: int | None = None,
        backoff: Backoff | None = None,
        timeout: Duration | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        cron: str | None = None,
        tz: str | None = None,
        missed: MissedPolicy = "skip",
        secret_fields: Iterable[str] = (),
    ) -> JobDefinition[Any] | Callable[[F], JobDefinition[Any]]:
        """Register a handler ``(payload: Model, ctx: JobContext)``; its options override the queue's.

        With ``cron`` (Unix, 5 fields or ``@hourly``-style), the job is also a schedule of the same name
        with the payload model's defaults, in time zone ``tz`` (default UTC), ``missed`` fires skipped
        or caught up once. A job whose payload needs values is scheduled with :meth:`schedule`.

        ``secret_fields``: dotted payload paths stored intact but shown redacted (dashboard, admin API,
        webhooks); fields annotated ``Annotated[str, Secret()]`` are secret too.
        """
        if cron is None and (tz is not None or missed != "skip"):
            raise ConfigurationError("tz= and missed= describe a schedule: give cron= too")

        def register(fn: Callable[..., Any]) -> JobDefinition[Any]:
            job_name = name or fn.__name__
            if job_name in self.registry:
                raise ConfigurationError(f"a job named {job_name!r} is already registered")
            queue_name = queue or self.settings.default_queue
            self.queue_config(queue_name)
            definition = JobDefinition(
                self, fn, name=job_name, queue=queue_name, priority=priority, attempts=attempts,
                backoff=backoff, timeout=timeout, retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
                secret_fields=secret_fields,
            )
            self.registry[job_name] = definition
            if cron is not None:
                try:
                    self.schedules.define(job_name, cron=cron, job=definition, tz=tz, missed=missed)
                except Exception:
                    del self.registry[job_name]
                    raise
            return definition

        return register(func) if func is not None else register

    def schedule(
        self,
        name: str,
        *,
        cron: str,
        job: JobDefinition[Any] | str,
        payload: BaseModel | Mapping[str, Any] | None = None,
        tz: str | None = None,
        missed: MissedPolicy = "skip",
        queue: str | None = None,
    ) -> Schedule:
        """Define a recurring schedule in code: enqueue ``job`` with ``payload`` at each ``cron`` time in ``tz``.

        The payload is validated against the job's model now. ``missed="catch_up"`` runs the latest
        fire missed while no worker ran, once; ``"skip"`` (the default) drops missed fires.
        """
        return self.schedules.define(name, cron=cron, job=job, payload=payload, tz=tz, missed=missed, queue=queue)

    # -- hooks -----------------------------------------------------------------------------------

    def on(self, name: HookName) -> Callable[[Hook], Hook]:
        """Decorator: ``@app.on("job_failed")``. Names: job_started, job_completed, attempt_failed, job_failed, job_cancelled."""
        return lambda hook: self.hooks.add(name, hook)

    def on_job_started(self, hook: Hook) -> Hook:
        return self.hooks.add("job_started", hook)

    def on_job_completed(self, hook: Hook) -> Hook:
        return self.hooks.add("job_completed", hook)

    def on_attempt_failed(self, hook: Hook) -> Hook:
        return self.hooks.add("attempt_failed", hook)

    def on_job_failed(self, hook: Hook) -> Hook:
        return self.hooks.add("job_failed", hook)

    def on_job_cancelled(self, hook: Hook) -> Hook:
        return self.hooks.add("job_cancelled", hook)

    def on_worker_start(self, hook: WorkerHook) -> WorkerHook:
        """Decorator: run ``hook()`` (``def`` or ``async def``) when a worker starts, before it takes a job.

        For shared resources such as database pools; an ``async def`` hook runs on the worker's event loop,
        the one its ``async def`` jobs run on. A start hook that raises stops the worker from starting.
        """
        self.worker_hooks["start"].append(hook)
        return hook

    def on_worker_stop(self, hook: WorkerHook) -> WorkerHook:
        """Decorator: run ``hook()`` when a worker stops, after its last job (errors are logged)."""
        self.worker_hooks["stop"].append(hook)
        return hook

    # -- enqueueing ---------------------------------------------------------------------------------

    def submit(self, envelopes: Sequence[Envelope]) -> list[JobHandle]:
        """Hand validated envelopes to the backend; the handles come back in the same order."""
        if not envelopes:
            return []
        if len(envelopes) == 1 and not _uses_workflows(envelopes):  # the common case, without the scans below
            envelope = envelopes[0]
            receipt = self.backend.enqueue(envelopes)[0]
            return [JobHandle(self, receipt.id, queue=envelope.queue, name=envelope.name, created=receipt.created)]
        if _uses_workflows(envelopes):
            self.workflows.check(envelopes)
        if any(e.depends_on for e in envelopes):
            receipts = self.workflows.enqueue(envelopes)
        else:
            receipts = self.backend.enqueue(envelopes)
        return self._handles(envelopes, receipts)

    async def asubmit(self, envelopes: Sequence[Envelope]) -> list[JobHandle]:
        """:meth:`submit` for asyncio code."""
        if not envelopes:
            return []
        if _uses_workflows(envelopes):
            self.workflows.check(envelopes)
        if any(e.depends_on for e in envelopes):
            receipts = await asyncio.to_thread(self.workflows.enqueue, envelopes)
        else:
            receipts = await self.backend.aenqueue(envelopes)
        return self._handles(envelopes, receipts)

    def _handles(self, envelopes: Sequence[Envelope], receipts: Sequence[EnqueueReceipt]) -> list[JobHandle]:
        return [JobHandle(self, r.id, queue=e.queue, name=e.name, created=r.created) for e, r in zip(envelopes, receipts)]

    def group(self, members: Iterable[Signature]) -> Group:
        """A group of jobs that run in parallel: ``app.group([a.s(...), b.s(...)]).then(summary.s()).enqueue()``.

        The callback runs once, after the last member ended (completed, failed or cancelled), and reads
        the members' results and failures with ``ctx.group_results()``.
        """
        from jobqueue.workflows import Group

        return Group(self, members)

    def job_named(self, name: str) -> JobDefinition[Any]:
        """The registered job ``name``, or :class:`UnknownJob` listing the known ones."""
        job = self.registry.get(name)
        if job is None:
            raise UnknownJob(f"no job named {name!r} is registered (known: {', '.join(sorted(self.registry)) or 'none'})")
        return job

    def enqueue(self, name: str, payload: Mapping[str, Any] | None = None, **options: Any) -> JobHandle:
        """Enqueue a job by its registered name with a JSON-like payload (the CLI's path)."""
        return self.job_named(name).enqueue(dict(payload or {}), **options)

    def handle(self, job_id: str, queue: str | None = None) -> JobHandle | None:
        """A handle on an existing job, or None if it is unknown."""
        status = self.get(job_id, queue)
        return None if status is None else JobHandle(self, job_id, queue=status.queue, name=status.name, created=False)

    # -- reading and steering ---------------------------------------------------------------------------

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        """A job's status by id, whatever queue it is in; None if unknown or no longer retained."""
        return self.backend.get(job_id, queue)

    async def aget(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        return await self.backend.aget(job_id, queue)

    @overload
    def stats(self, queue: str) -> QueueStats: ...

    @overload
    def stats(self, queue: None = None) -> dict[str, QueueStats]: ...

    def stats(self, queue: str | None = None) -> QueueStats | dict[str, QueueStats]:
        """Counts per state and the paused flag of ``queue``, or of every declared queue."""
        if queue is not None:
            return self.backend.stats(queue)
        return {name: self.backend.stats(name) for name in self.queues}

    def throughput(self, queue: str, minutes: int = 15) -> Throughput:
        """Jobs of ``queue`` completed and failed per minute over the last ``minutes`` minutes."""
        return self.backend.throughput(queue, minutes)

    def oldest_waiting_since(self, queue: str) -> float | None:
        """Since when the longest-waiting job of ``queue`` waits (epoch seconds); None if none waits."""
        return self.backend.oldest_waiting_since(queue)

    def redacted_payload(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` of a job named ``name`` as it may be shown: its secret fields redacted."""
        job = self.registry.get(name)
        return job.redacted(payload) if job is not None else dict(payload)

    def admin_asgi(
        self,
        *,
        token: str | None = None,
        auth: Callable[[Any], bool | Awaitable[bool]] | None = None,
        **options: Any,
    ) -> Any:
        """The admin HTTP API and dashboard as an ASGI app, to mount in FastAPI or Starlette (extra ``admin``).

        ``token``: the bearer token (default ``JOBQUEUE_ADMIN_TOKEN``); ``auth``: a callable given the
        Starlette request that says whether it may pass (the host app's own auth). Without either it
        refuses to build. See :func:`jobqueue.admin.create_admin_app`.
        """
        from jobqueue.admin import create_admin_app

        return create_admin_app(self, token=token, auth=auth, **options)

    def health(self) -> Health:
        """``healthy``, ``degraded`` or ``unhealthy``, with the backend's name and whether its broker answers."""
        return self.backend.health()

    def list_jobs(self, queue: str, state: JobState | str, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        """A page of ``queue``'s jobs in ``state``, oldest first."""
        return self.backend.list_jobs(queue, JobState(state), limit=limit, cursor=cursor)

    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        return self.backend.cancel(job_id, queue)

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        return self.backend.retry(job_id, queue)

    def retry_failed(self, queue: str) -> int:
        return self.backend.retry_failed(queue)

    def pause(self, queue: str) -> None:
        self.backend.pause(queue)

    def resume(self, queue: str) -> None:
        self.backend.resume(queue)

    def clean(self, queue: str, state: JobState | str = JobState.COMPLETED, older_than: Duration = 0) -> int:
        """Remove ``queue``'s jobs in ``state`` older than ``older_than``; returns how many."""
        return self.backend.clean(queue, JobState(state), parse_duration(older_than, what="older_than"))


def _uses_workflows(envelopes: Sequence[Envelope]) -> bool:
    return any(
        e.depends_on or e.idempotency_key is not None or e.concurrency_key is not None or e.group is not None or e.callback_of is not None
        for e in envelopes
    )
