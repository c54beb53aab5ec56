"""``RedisBackend``: jobs in Redis, every state change one Lua script over one queue's keys."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from redis.exceptions import ResponseError

from jobqueue.backends.base import Backend
from jobqueue.envelope import Envelope
from jobqueue.errors import BrokerUnavailable, UnsupportedEnvelope
from jobqueue.refs import JobRef
from jobqueue.runner import Outcome, error_info
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt, ErrorInfo, Health, JobPage, JobStatus, QueueStats
from jobqueue_redis.codec import (
    encode_ref, envelope_of, expired, finish_args, lease_ms, outcome_args, retention_spec, status_of,
)
from jobqueue_redis.connection import TRANSIENT, Outage, abounded, bounded, build_async_client, build_client
from jobqueue_redis.keys import QueueKeys
from jobqueue_redis.scripts import (
    FOLLOW_UP,
    FOLLOW_UP_GROUP,
    FOLLOW_UPS,
    Script,
    Scripts,
    arun_pipeline,
    is_noscript,
    run_pipeline,
)
from jobqueue_redis.settings import RedisSettings
from jobqueue_redis.streaming import Call, LazyCalls, run_streamed

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.options import QueueConfig
    from jobqueue.schedules.store import ScheduleStore
    from jobqueue_redis.fallback import InlineFallback
    from jobqueue_redis.workflows import RedisWorkflowStore

logger = logging.getLogger("jobqueue.redis")

DEFAULT_CONCURRENCY = 10
#: jobs per enqueue_many.lua call: a bulk enqueue holds the server for one chunk at a time (a few ms), and the
#: server runs one chunk while the next is built (see jobqueue_redis.streaming)
BULK_CHUNK = 200

_STATE_SETS = {
    JobState.WAITING: "waiting", JobState.DELAYED: "delayed", JobState.ACTIVE: "active",
    JobState.COMPLETED: "completed", JobState.FAILED: "failed", JobState.CANCELLED: "cancelled",
    JobState.WAITING_CHILDREN: "waiting-children",
}


class RedisBackend(Backend):
    """Jobs kept in Redis (or Valkey, or a Redis Cluster), run by ``jobqueue worker`` processes.

    Configured from the app's environment snapshot (``JOBQUEUE_REDIS_URL``, ``REDIS_URL``, ``REDIS_HOST``...,
    see :class:`RedisSettings`) or explicitly: ``RedisBackend("redis://host:6379/0", lease=60)``.
    ``client`` / ``async_client_factory`` inject ready clients (fakeredis in tests).
    """

    name: ClassVar[str] = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client_factory: Callable[[], Any] | None = None,
        **options: Any,
    ) -> None:
        self._options = dict(options, url=url)
        self._client = client
        self._aclient_factory = async_client_factory
        self._aclient: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._degraded_until = 0.0
        #: the last enqueue found Redis unreachable: the next one tries once instead of for ``retry_for`` seconds
        self._unreachable = False

    def bind(self, app: JobQueue) -> None:
        super().bind(app)
        options = dict(self._options)
        if options.get("prefix") is None and app.settings.prefix != "jobqueue":
            options["prefix"] = app.settings.prefix
        self.settings = RedisSettings.from_environ(app.settings.environ, **options)
        self.scripts = Scripts()
        self._fallback: InlineFallback | None = None  # built when Redis is first unreachable at enqueue
        self._keys: dict[str, QueueKeys] = {}
        self._workflows: RedisWorkflowStore | None = None  # built on first use: most jobs never need it
        self._workflows_lock = threading.Lock()
        self._retention: dict[str, tuple[Any, str]] = {}
        self._claim_tails: dict[str, tuple[QueueConfig, list[str]]] = {}  # per queue: its config, claim.lua's last 6 ARGV

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The synchronous client, built on first use."""
        if self._client is None:
            self._client = build_client(self.settings)
        return self._client

    def aclient(self) -> Any:
        """The asyncio client of the running event loop (built again when the loop changes)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            client = self._aclient_factory() if self._aclient_factory else build_async_client(self.settings)
            self._aclient = (loop, client)
        return self._aclient[1]

    def keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys(self.settings.prefix, queue)
        return keys

    def retention(self, queue: str) -> str:
        config = self.app.queue_config(queue)
        cached = self._retention.get(queue)
        if cached is None or cached[0] is not config:  # a queue declared again gets its spec again
            cached = self._retention[queue] = (config, retention_spec(config))
        return cached[1]

    def _capped(self, queue: str) -> bool:
        """Whether ``queue`` has a concurrency cap (a finish then wakes a worker that held back for it)."""
        return self.app.queue_config(queue).concurrency is not None

    def _now(self) -> float:
        return self.app.clock.now()

    def _run(self, script: Script, queue: str, args: Sequence[Any]) -> Any:
        return script(self.client, self.keys(queue).base, [str(a) for a in args])

    def _bounded(self, what: str, call: Callable[[], Any]) -> Any:
        return bounded(self.settings, what, call)

    def _queues_for(self, queue: str | None) -> list[str]:
        return [queue] if queue is not None else list(self.app.queues)

    def _locate(self, job_id: str, queue: str | None) -> str | None:
        """The queue holding ``job_id`` (one pipelined look through the app's queues)."""
        names = self._queues_for(queue)
        if len(names) == 1:
            return names[0]

        def look() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.exists(self.keys(name).job(job_id))
            return list(pipe.execute())

        found = self._bounded("find job", look)
        return next((name for name, hit in zip(names, found) if hit), None)

    # -- producing ------------------------------------------------------------------------------

    @staticmethod
    def _job_fields(envelope: Envelope, now: float) -> list[str]:
        """A job's fields as ``enqueue.lua`` and ``enqueue_many.lua`` both take them."""
        return [
            envelope.id, envelope.encode(), str(envelope.priority), "" if envelope.not_before is None else repr(envelope.not_before),
            repr(envelope.enqueued_at or now), str(envelope.attempt), str(envelope.max_attempts), envelope.concurrency_key or "",
            "1" if envelope.group is not None else "",
        ]

    def _enqueue_args(self, envelope: Envelope, origin: str, now: float) -> list[str]:
        """``enqueue.lua``'s ARGV; a job without an idempotency key or parents stops after its fields."""
        args = [repr(now), origin, self.retention(envelope.queue), *self._job_fields(envelope, now)]
        if envelope.idempotency_key is None and not envelope.depends_on:
            return args
        idempotency: list[str] = ["", "", ""]
        if envelope.idempotency_key is not None:
            window = envelope.idempotency_window or self.app.queue_config(envelope.queue).idempotency_window
            idempotency = [envelope.idempotency_key, repr(now + window), str(max(math.ceil(window * 1000), 1))]
        return [*args, *idempotency, *(encode_ref(parent) for parent in envelope.depends_on)]

    def _enqueue_calls(self, envelopes: Sequence[Envelope], origin: str, now: float) -> tuple[Sequence[Call], list[list[int]]]:
        """The script calls that store ``envelopes``, and for each call the indexes of the envelopes it answers
        for (a bulk call: one or more, answered by a list; an ``enqueue.lua`` call: one, answered alone).

        One job: one ``enqueue.lua`` call. Many: the plain jobs of each queue go ``BULK_CHUNK`` at a time to
        ``enqueue_many.lua``; a job with an idempotency key or parents gets its own ``enqueue.lua`` call. A call's
        arguments are built when it is first read (see :func:`jobqueue_redis.streaming.run_streamed`).
        """
        if len(envelopes) == 1:
            envelope = envelopes[0]
            return [(self.scripts.enqueue, self.keys(envelope.queue).base, self._enqueue_args(envelope, origin, now))], [[0]]
        answers: list[list[int]] = []
        alone: list[int] = []  # the first calls: one job each
        plain: dict[str, list[int]] = {}
        for i, envelope in enumerate(envelopes):
            if envelope.idempotency_key is None and not envelope.depends_on:
                plain.setdefault(envelope.queue, []).append(i)
            else:
                alone.append(i)
                answers.append([i])
        chunks: list[tuple[str, list[int]]] = []
        for queue, indexes in plain.items():
            for start in range(0, len(indexes), BULK_CHUNK):
                chunk = indexes[start:start + BULK_CHUNK]
                chunks.append((queue, chunk))
                answers.append(chunk)

        def build(n: int) -> Call:
            if n < len(alone):
                envelope = envelopes[alone[n]]
                return self.scripts.enqueue, self.keys(envelope.queue).base, self._enqueue_args(envelope, origin, now)
            queue, chunk = chunks[n - len(alone)]
            args = [repr(now), origin, self.retention(queue)]
            for i in chunk:
                args += self._job_fields(envelopes[i], now)
            return self.scripts.enqueue_many, self.keys(queue).base, args

        return LazyCalls(len(answers), build), answers

    def _receipts(
        self, envelopes: Sequence[Envelope], calls: Sequence[Call], answers: Sequence[list[int]], results: Sequence[Any],
    ) -> list[EnqueueReceipt]:
        """One receipt per envelope, in order, from the answers of the calls that stored them."""
        if len(calls) == 1 and len(envelopes) == 1:  # one job, one enqueue.lua answer
            result = results[0]
            if isinstance(result, Exception):
                raise result
            if isinstance(result, list):
                return [EnqueueReceipt(id=result[1], created=False)]
            return [EnqueueReceipt(id=envelopes[0].id, created=bool(int(result)))]
        receipts: list[EnqueueReceipt | None] = [None] * len(envelopes)
        for (script, _, _), indexes, result in zip(calls, answers, results):
            if isinstance(result, Exception):
                raise result
            for i, r in zip(indexes, result if script is self.scripts.enqueue_many else [result]):
                receipts[i] = (
                    EnqueueReceipt(id=r[1], created=False) if isinstance(r, list) else EnqueueReceipt(id=envelopes[i].id, created=bool(int(r)))
                )
        return [r for r in receipts if r is not None]

    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        """One round trip: one script call for one job; for many, bulk calls in one pipeline. Safe to resend:
        ids dedup, the origin token tells ours."""
        origin, now = os.urandom(8).hex(), self._now()
        calls, answers = self._enqueue_calls(envelopes, origin, now)
        outage = Outage()

        def send() -> list[Any]:
            if len(calls) == 1:
                script, base, args = calls[0]
                return [script(self.client, base, args)]
            return run_streamed(self.client, self.scripts, calls)

        try:
            results = bounded(self.settings, "enqueue", send, outage, patient=not self._unreachable)
        except BrokerUnavailable as exc:
            self._unreachable = True
            self._refuse_inline(envelopes, exc, outage)
            self._degraded_until = time.monotonic() + self.settings.degraded_for
            return self.fallback.run(envelopes, exc)
        self._unreachable = False
        return self._receipts(envelopes, calls, answers, results)

    async def aenqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        """:meth:`enqueue` on the asyncio client of the running loop."""
        origin, now = os.urandom(8).hex(), self._now()
        calls, answers = self._enqueue_calls(envelopes, origin, now)
        outage = Outage()
        client = self.aclient()

        async def send() -> list[Any]:
            if len(calls) == 1:
                script, base, args = calls[0]
                return [await script.acall(client, base, args)]
            return await arun_pipeline(client, self.scripts, calls)

        try:
            results = await abounded(self.settings, "enqueue", send, outage, patient=not self._unreachable)
        except BrokerUnavailable as exc:
            self._unreachable = True
            self._refuse_inline(envelopes, exc, outage)
            self._degraded_until = time.monotonic() + self.settings.degraded_for
            return await self.fallback.arun(envelopes, exc)
        self._unreachable = False
        return self._receipts(envelopes, calls, answers, results)

    @property
    def fallback(self) -> InlineFallback:
        """Where jobs run inline while Redis is unreachable (``JOBQUEUE_FALLBACK=sync``); built on first use."""
        if self._fallback is None:
            from jobqueue_redis.fallback import InlineFallback

            self._fallback = InlineFallback(self.app)
        return self._fallback

    def _refuse_inline(self, envelopes: Sequence[Envelope], exc: BrokerUnavailable, outage: Outage) -> None:
        """Raise unless every job may run inline instead (``JOBQUEUE_FALLBACK=sync`` and nothing sent)."""
        if self.app.settings.fallback != "sync":
            raise exc
        if outage.maybe_sent:
            raise BrokerUnavailable(f"{exc}; the enqueue may have reached Redis, so it is not run inline") from exc.__cause__
        from jobqueue_redis.fallback import why_not_inline

        for envelope in envelopes:
            reason = why_not_inline(envelope)
            if reason is not None:
                raise BrokerUnavailable(f"{exc}; job {envelope.id!r} ({envelope.name}) cannot run inline: {reason}") from exc.__cause__

    # -- reading --------------------------------------------------------------------------------

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        inline = self._fallback.get(job_id, queue) if self._fallback is not None else None
        if inline is not None:
            return inline
        names = self._queues_for(queue)

        def read() -> list[Any]:
            if len(names) == 1:
                return [self.client.hgetall(self.keys(names[0]).job(job_id))]
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self.keys(name).job(job_id))
            return list(pipe.execute())

        now = self._now()
        for name, data in zip(names, self._bounded("get", read)):
            status = status_of(data, name, job_id)
            if status is not None:
                return None if expired(status, self.app.queue_config(name), now) else status
        return None

    def stats(self, queue: str) -> QueueStats:
        raw = self._bounded("stats", lambda: self._run(self.scripts.stats, queue, [repr(self._now()), self.retention(queue)]))
        states = [JobState.WAITING, JobState.DELAYED, JobState.ACTIVE, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]
        counts = {state: 0 for state in JobState}
        counts.update({state: int(n) for state, n in zip(states, raw)})
        counts[JobState.WAITING_CHILDREN] = int(raw[7])
        return QueueStats(queue=queue, counts=counts, paused=bool(int(raw[6])))

    def list_jobs(self, queue: str, state: JobState, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        """A page in the order of the state's set (waiting: priority then FIFO; finished: finish order); the cursor is an offset."""
        if state not in _STATE_SETS:
            return JobPage(jobs=[])
        keys = self.keys(queue)
        offset = int(cursor) if cursor else 0
        ids: list[str] = self._bounded("list", lambda: self.client.zrange(keys.set(_STATE_SETS[state]), offset, offset + limit))

        def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids[:limit]:
                pipe.hgetall(keys.job(job_id))
            return list(pipe.execute())

        rows = self._bounded("list", read) if ids else []
        jobs = [s for job_id, data in zip(ids, rows) if (s := status_of(data, queue, job_id)) is not None]
        more = len(ids) > limit
        return JobPage(jobs=jobs, next_cursor=str(offset + limit) if more else None)

    def health(self) -> Health:
        degraded = time.monotonic() < self._degraded_until
        started = time.perf_counter()
        try:
            self.client.ping()
        except TRANSIENT as exc:
            return Health(status="degraded" if self.app.settings.fallback == "sync" else "unhealthy", backend=self.name, broker_reachable=False,
                          detail=f"Redis at {self.settings.redacted_url} unreachable: {exc}")
        latency = (time.perf_counter() - started) * 1000
        detail = "jobs ran inline recently because Redis was unreachable" if degraded else self.settings.redacted_url
        return Health(status="degraded" if degraded else "healthy", backend=self.name, broker_reachable=True,
                      latency_ms=round(latency, 3), detail=detail)

    # -- steering -------------------------------------------------------------------------------

    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        name = self._locate(job_id, queue)
        if name is None:
            return False
        args = [job_id, repr(self._now()), self.retention(name)]
        answer = int(self._bounded("cancel", lambda: self._run(self.scripts.cancel, name, args)))
        if answer == FOLLOW_UP:
            self.follow_up(JobRef(queue=name, id=job_id))
        return bool(answer)

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        name = self._locate(job_id, queue)
        if name is None:
            return False
        return bool(int(self._bounded("retry", lambda: self._run(self.scripts.retry, name, [repr(self._now()), job_id]))))

    def retry_failed(self, queue: str) -> int:
        return int(self._bounded("retry failed", lambda: self._run(self.scripts.retry, queue, [repr(self._now()), "*"])))

    def pause(self, queue: str) -> None:
        self._bounded("pause", lambda: self._run(self.scripts.pause, queue, ["1"]))

    def resume(self, queue: str) -> None:
        self._bounded("resume", lambda: self._run(self.scripts.pause, queue, ["0"]))

    def clean(self, queue: str, state: JobState, older_than: float = 0.0) -> int:
        if state is JobState.ACTIVE:
            raise ValueError("active jobs cannot be cleaned; cancel them instead")
        if state not in _STATE_SETS:
            return 0
        cutoff = repr(self._now() - older_than)
        removed, offset = 0, 0
        while True:
            gone, scanned = self._bounded("clean", self._clean_slice(queue, [_STATE_SETS[state], cutoff, offset, 500]))
            removed += int(gone)
            offset += int(scanned) - int(gone)
            if int(scanned) < 500:
                return removed

    def _clean_slice(self, queue: str, args: list[Any]) -> Callable[[], Any]:
        return lambda: self._run(self.scripts.clean, queue, args)

    def close(self) -> None:
        """Drop connections; the next call reconnects."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing is best effort
                logger.debug("closing the Redis client failed", exc_info=True)
        self._aclient = None

    def workflow_store(self) -> RedisWorkflowStore:
        """Dependencies, groups and follow-ups in Redis (see :mod:`jobqueue_redis.workflows`)."""
        store = self._workflows
        if store is None:
            with self._workflows_lock:  # one store: it remembers which jobs ended without dependents
                if self._workflows is None:
                    from jobqueue_redis.workflows import RedisWorkflowStore

                    self._workflows = RedisWorkflowStore(self)
                store = self._workflows
        return store

    def follow_up(self, job: JobRef) -> None:
        """Tell the dependents and group of a job that just ended (call after the step that ended it was applied).

        Errors are logged, never raised: the follow-up stays recorded and the workers' recovery runs it again.
        """
        try:
            followup = self.workflow_store().followup(job)
            if followup is not None:
                self.app.workflows.after_end(followup)
        except Exception:
            logger.exception("job %s ended, but telling its dependents or group failed; recovery will retry", job)

    def follow_up_attempt(self, envelope: Envelope, outcome: Outcome, answer: int) -> None:
        """Run the follow-up of an attempt whose outcome ``finish.lua`` recorded with ``answer``, if it left one.

        The follow-up is built from the attempt (a delayed outcome ends a job only when it was cancelled).
        """
        if answer not in FOLLOW_UPS:
            return
        from jobqueue.workflows.store import Followup, end_of

        state = JobState.CANCELLED if outcome.state is JobState.DELAYED else outcome.state
        followup = Followup(envelope=envelope, end=end_of(state, outcome.error, outcome.result))
        if answer == FOLLOW_UP_GROUP:
            self.workflow_store().note_childless(envelope.ref)
        try:
            self.app.workflows.after_end(followup)
        except Exception:
            logger.exception("job %s ended, but telling its dependents or group failed; recovery will retry", envelope.id)

    def run_followups(self, queues: Sequence[str], older_than: float = 0.0) -> int:
        """Run the follow-ups of ``queues`` recorded at least ``older_than`` seconds ago; returns how many ran."""
        ran = 0
        for queue in queues:
            for followup in self.workflow_store().pending_followups(queue, older_than):
                try:
                    self.app.workflows.after_end(followup)
                    ran += 1
                except Exception:
                    logger.exception("follow-up of job %s failed; recovery will retry", followup.envelope.ref)
        return ran

    def schedule_store(self) -> ScheduleStore:
        """Dynamic schedules, cursors and the ticker's lease in Redis (see :mod:`jobqueue_redis.schedule_store`)."""
        store = self._schedule_store
        if store is None:
            from jobqueue_redis.schedule_store import RedisScheduleStore

            store = self._schedule_store = RedisScheduleStore(self)
        return store

    # -- what workers call ------------------------------------------------------------------------

    def claim(self, queue: str, count: int, token_prefix: str) -> tuple[list[tuple[Envelope, str]], float | None]:
        """Take up to ``count`` due jobs of ``queue`` under a lease; also when to look again (or None)."""
        return self._claimed(queue, self._run(self.scripts.claim, queue, self._claim_args(queue, count, token_prefix)))

    def cycle(
        self, queue: str, finished: Sequence[tuple[Envelope, str, Outcome]], count: int, token_prefix: str,
    ) -> tuple[list[int], list[tuple[Envelope, str]], float | None]:
        """Record ``finished`` attempts of ``queue`` and claim up to ``count`` more, in one script call.

        The worker's hot path: finish.lua for each outcome, then claim.lua (skipped when ``count`` is 0),
        atomically, in one round trip. Returns finish.lua's answer for each outcome (as :meth:`finish_many`:
        0 not written, else written, :data:`FOLLOW_UPS` with a follow-up to run), the claimed jobs, the hint.
        """
        done, reply = self._run(self.scripts.cycle, queue, self._cycle_args(queue, finished, count, token_prefix))
        kept = [int(r) for r in done]
        if not reply:
            return kept, [], None
        claimed, hint = self._claimed(queue, reply)
        return kept, claimed, hint

    async def acycle(
        self, queue: str, finished: Sequence[tuple[Envelope, str, Outcome]], count: int, token_prefix: str,
    ) -> tuple[list[int], list[tuple[Envelope, str]], float | None]:
        """:meth:`cycle` on the asyncio client of the running loop (the worker's ``async def`` jobs)."""
        args = [str(a) for a in self._cycle_args(queue, finished, count, token_prefix)]
        done, reply = await self.scripts.cycle.acall(self.aclient(), self.keys(queue).base, args)
        kept = [int(r) for r in done]
        if not reply:
            return kept, [], None
        if reply[2]:  # leases that ran out for good: their follow-ups are blocking calls, kept off the loop
            claimed, hint = await asyncio.to_thread(self._claimed, queue, reply)
        else:
            claimed, hint = self._claimed(queue, reply)
        return kept, claimed, hint

    def _cycle_args(self, queue: str, finished: Sequence[tuple[Envelope, str, Outcome]], count: int, token_prefix: str) -> list[Any]:
        now = self._now()
        args: list[Any] = [len(finished), repr(now), self.retention(queue), "1" if self._capped(queue) else ""]
        for env, token, outcome in finished:
            args += outcome_args(env.id, token, env, outcome)
        if count > 0:
            args += self._claim_args(queue, count, token_prefix, now)
        return args

    def wait_and_claim(
        self, queue: str, timeout: float, count: int, token_prefix: str,
    ) -> tuple[list[tuple[Envelope, str]], float | None] | None:
        """Block up to ``timeout`` for work on ``queue``, then claim up to ``count`` jobs, with the server's clock as "now".

        Where the queue has no rate limit and no concurrency cap, the worker first registers as idle
        (``idle.lua``) and blocks on its own inbox as well as the wake-up list: a job enqueued meanwhile is
        handed to it by ``enqueue.lua``, already claimed, and the BLPOP's answer is the job (no claim call
        between the enqueue and the start). Otherwise, or when the wait ends without one, ``wake.lua``
        ends the registration and claims; without a registration it is pipelined behind the BLPOP, so it
        runs on the server the moment the wait returns. None when this cannot be done here (a clock other
        than the system's, or fakeredis); the caller waits, then claims.
        """
        from jobqueue.clock import SystemClock

        if not isinstance(self.app.clock, SystemClock) or type(self.client).__module__.startswith("fakeredis"):
            return None
        args = self._claim_args(queue, count, token_prefix)
        args[2] = repr(self.settings.lease)  # wake.lua replaces "now" (args[0]) with the server's clock and adds the lease
        client = self.client
        if hasattr(client, "get_node_from_key") and hasattr(client, "get_redis_connection"):  # a cluster: the queue's node
            client = client.get_redis_connection(client.get_node_from_key(self.keys(queue).base))
        config = self.app.queue_config(queue)
        try:
            if config.rate_limit is None and config.concurrency is None:  # a job may be handed to this worker
                return self._wait_registered(client, queue, args, timeout, f"{token_prefix}:0")  # a claim's tokens count from 1
            return self._wait_pipelined(client, queue, args, timeout)
        except ResponseError as exc:
            if str(exc).startswith(("MOVED", "ASK")):
                return [], None  # the cluster client finds the moved slot on the caller's next cycle
            raise

    def _wait_registered(
        self, client: Any, queue: str, args: list[Any], timeout: float, token: str,
    ) -> tuple[list[tuple[Envelope, str]], float | None]:
        """Register as idle and block on this wait's inbox and the wake-up list; the job handed over, else ``wake.lua``."""
        keys = self.keys(queue)
        inbox = f"{keys.base}inbox:{token}"
        registration = f"{token}|{self.settings.lease!r}"
        try:
            self.scripts.idle(client, keys.base, [registration, repr(timeout)])
            popped = client.blpop([inbox, keys.signal], timeout=timeout)
        except TRANSIENT as exc:  # the wait broke off: end the registration now, taking a job handed to it meanwhile
            failure: BaseException | None = exc
        else:
            failure = None
            if popped is not None and popped[0] == inbox:
                return self._handed(queue, popped[1], token), None
        try:  # a failed wait tries once, on a fresh connection; if that fails too, the wait's own error goes up
            reply = self.scripts.wake(client, keys.base, [*args, registration])
        except TRANSIENT:
            if failure is None:
                raise
            raise failure from None
        if failure is not None:
            logger.debug("waiting for work on %s broke off (%s); the registration is ended and the claim ran", queue, failure)
        return self._woken(queue, reply, token)

    def _wait_pipelined(
        self, client: Any, queue: str, args: list[Any], timeout: float,
    ) -> tuple[list[tuple[Envelope, str]], float | None]:
        """Block on the wake-up list with ``wake.lua`` pipelined behind: it claims the moment the wait returns."""
        keys = self.keys(queue)
        wake = self.scripts.wake
        pipe = client.pipeline(transaction=False)
        pipe.blpop([keys.signal], timeout=timeout)
        pipe.evalsha(wake.sha, 1, keys.base, *args)
        _, reply = pipe.execute(raise_on_error=False)
        if isinstance(reply, Exception):
            if is_noscript(reply):  # a fresh server: load the script; the caller's next cycle claims
                client.script_load(wake.text)
                return [], None
            raise reply
        return self._woken(queue, reply, "")

    def _woken(self, queue: str, reply: Any, token: str) -> tuple[list[tuple[Envelope, str]], float | None]:
        """wake.lua's answer: the claimed jobs, a job handed to this wait (first), and the hint."""
        claimed_reply, handed = reply
        jobs, hint = self._claimed(queue, claimed_reply)
        if handed is not None:
            jobs[:0] = self._handed(queue, handed, token)
        return jobs, hint

    def _handed(self, queue: str, fields: str, token: str) -> list[tuple[Envelope, str]]:
        """The job enqueue.lua handed to this worker's inbox (attempt '|' envelope json NUL id), under ``token``."""
        attempt, _, rest = fields.partition("|")
        raw, _, job_id = rest.partition("\x00")
        return self._claimed(queue, [[job_id, raw, attempt, token], "", []])[0]

    _lost_json: str | None = None

    def _claim_args(self, queue: str, count: int, token_prefix: str, now: float | None = None) -> list[Any]:
        """claim.lua's ARGV, every one as text already (so :meth:`_run`'s ``str()`` pass leaves them as they are).

        What follows from the queue's config (frozen: a queue declared again is a new one) is built once per config.
        """
        config = self.app.queue_config(queue)
        tails = self._claim_tails
        tail = tails.get(queue)
        if tail is None or tail[0] is not config:
            if self._lost_json is None:
                lost = ErrorInfo(type="LeaseExpired", message="the worker running this attempt stopped answering (its lease ran out)", retryable=True)
                self._lost_json = lost.model_dump_json()
            rate = config.rate_limit
            tail = tails[queue] = (config, [
                "" if config.concurrency is None else str(config.concurrency),
                "" if rate is None else str(rate.limit), "" if rate is None else repr(rate.period),
                self._lost_json, self.retention(queue), str(config.concurrency_per_key),
            ])
        now = self._now() if now is None else now
        return [repr(now), str(count), lease_ms(now + self.settings.lease), token_prefix, *tail[1]]

    def _claimed(self, queue: str, reply: Any) -> tuple[list[tuple[Envelope, str]], float | None]:
        flat, hint, followed = reply
        for job_id in followed:  # leases that ran out for good ended these jobs
            self.follow_up(JobRef(queue=queue, id=job_id))
        claimed: list[tuple[Envelope, str]] = []
        fields = iter(flat)  # id, envelope json, attempt, token: four per job
        for job_id, raw, attempt, token in zip(fields, fields, fields, fields):
            try:
                claimed.append((envelope_of(job_id, queue, raw, attempt), token))
            except UnsupportedEnvelope as exc:
                stub = Envelope(id=job_id, name="?", queue=queue)
                self.finish(stub, token, Outcome(JobState.FAILED, error=error_info(exc, retryable=False, with_traceback=False)))
        return claimed, (float(hint) if hint else None)

    def finish(self, envelope: Envelope, token: str, outcome: Outcome) -> bool:
        """Record an attempt's outcome if ``token`` still holds the lease (then run the job's follow-up, if any)."""
        queue = envelope.queue
        args = finish_args(envelope.id, token, self._now(), envelope, outcome, self.retention(queue), self._capped(queue))
        answer = int(self._run(self.scripts.finish, envelope.queue, args))
        self.follow_up_attempt(envelope, outcome, answer)
        return bool(answer)

    def finish_many(self, items: Sequence[tuple[Envelope, str, Outcome]]) -> list[int]:
        """Record many outcomes in one pipeline: per attempt 0 (lease lost, nothing written), 1 (written), or
        :data:`FOLLOW_UP` / :data:`FOLLOW_UP_GROUP` (written, and the job ended with a follow-up, which the caller
        runs with :meth:`follow_up_attempt` once the ack is applied and it no longer holds the lease)."""
        now = self._now()
        calls = [
            (self.scripts.finish, self.keys(env.queue).base,
             finish_args(env.id, token, now, env, outcome, self.retention(env.queue), self._capped(env.queue)))
            for env, token, outcome in items
        ]
        results = run_pipeline(self.client, self.scripts, calls)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [int(r) for r in results]

    def set_progress(self, envelope: Envelope, token: str, value: float) -> bool:
        return bool(int(self._run(self.scripts.progress, envelope.queue, [envelope.id, token, repr(value)])))

    def cancel_requested(self, envelope: Envelope, token: str) -> bool:
        """True if someone asked to cancel the attempt, or it is no longer ours."""
        cancel, holder = self.client.hmget(self.keys(envelope.queue).job(envelope.id), ["cancel", "token"])
        return bool(cancel == "1" or holder != token)

    def heartbeat(self, queue: str, held: Sequence[tuple[str, str]]) -> list[str]:
        """Extend the leases of ``held`` (id, token) pairs; returns the ids whose lease was lost."""
        args: list[Any] = [lease_ms(self._now() + self.settings.lease)]
        for job_id, token in held:
            args += [job_id, token]
        return list(self._run(self.scripts.heartbeat, queue, args))

    def release(self, queue: str, held: Sequence[tuple[str, str]]) -> int:
        """Give jobs back to waiting (same attempt) because their worker is stopping."""
        args: list[Any] = [repr(self._now()), self.retention(queue)]
        for job_id, token in held:
            args += [job_id, token]
        return int(self._run(self.scripts.release, queue, args))

    def wait_for_work(self, queue: str, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a wake-up of ``queue``; True if one came."""
        return self.client.blpop([self.keys(queue).signal], timeout=timeout) is not None

    # -- workers ----------------------------------------------------------------------------------

    def run_worker(
        self,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        grace: float | None = None,
        burst: bool = False,
        processes: int = 1,
        **options: Any,
    ) -> None:
        """``jobqueue worker``: serve ``queues`` (default: the app's) until SIGTERM/SIGINT.

        ``concurrency``: jobs at once in each process (default 10); ``grace``: seconds active jobs get
        after a stop signal (default ``JOBQUEUE_SHUTDOWN_GRACE``); ``burst``: run what is due, then return;
        ``processes``: worker processes under a supervisor that restarts any that dies (default 1: this
        process; ``jobqueue worker`` defaults to one per core, see :mod:`jobqueue_redis.supervisor`).
        """
        from jobqueue_redis.worker import Worker

        if options:
            raise TypeError(f"unknown worker option(s): {', '.join(sorted(options))}")

        def serve() -> None:
            worker = Worker(self, queues or None, concurrency=concurrency or DEFAULT_CONCURRENCY, grace=grace)
            if burst:
                worker.run_burst()
            else:
                worker.run()

        if processes == 1 or burst:
            serve()
            return
        from jobqueue_redis.supervisor import Supervisor

        if self._client is not None:  # never share a connection across a fork
            self.close()
            self._client = None
        Supervisor(serve, processes).run()

    def drain(self, queues: Sequence[str] | None = None, *, concurrency: int = 1) -> int:
        """Run every due job in this process until none is due; returns how many attempts ran."""
        from jobqueue_redis.worker import Worker

        return Worker(self, queues, concurrency=concurrency).run_burst()
