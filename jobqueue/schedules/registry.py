"""``app.schedules``: the schedules defined in code, and the dynamic ones kept by the backend's store."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from jobqueue.errors import ConfigurationError, InvalidPayload
from jobqueue.schedules.cron import CronError, CronExpr
from jobqueue.schedules.model import MissedPolicy, Schedule, ScheduleSource

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.job import JobDefinition
    from jobqueue.schedules.store import ScheduleStore
    from jobqueue.schedules.ticker import Fired, Ticker


class Schedules:
    """Every schedule of an app.

    Code-defined schedules (``app.schedule(...)``, ``@app.job(cron=...)``) live in the app and are
    what ``template.yaml`` holds on AWS. Dynamic ones (``add``/``remove``, e.g. one per tenant) live in
    the backend's :class:`~jobqueue.schedules.store.ScheduleStore`: Redis on the Redis backend,
    EventBridge Scheduler on the SQS backend, this process on sync and memory.
    """

    def __init__(self, app: JobQueue) -> None:
        self._app = app
        self._code: dict[str, Schedule] = {}
        self._ticker: Ticker | None = None

    # -- building -------------------------------------------------------------------------------

    def build(
        self,
        name: str,
        *,
        job: JobDefinition[Any] | str,
        payload: BaseModel | Mapping[str, Any] | None = None,
        queue: str | None = None,
        source: ScheduleSource = "code",
        **fields: Any,
    ) -> Schedule:
        """A validated :class:`Schedule`: the job is registered, the payload fits its model, ``cron`` and ``tz`` parse."""
        job_name = job if isinstance(job, str) else job.name
        definition = self._app.job_named(job_name)
        if not isinstance(job, str) and definition is not job:
            raise ConfigurationError(f"schedule {name!r}: job {job_name!r} is registered on another app")
        try:
            model = definition.validate_payload(payload)
        except InvalidPayload as exc:
            raise InvalidPayload(job_name, exc.errors(), f"{str(exc).partition(': ')[2]} (in schedule {name!r})") from None
        try:
            CronExpr(fields.get("cron", ""), fields.get("tz"))
        except CronError as exc:
            raise CronError(f"schedule {name!r}: {exc}") from None
        data = model.model_dump(mode="json") if model is not None else {}
        queue_name = queue or definition.queue
        self._app.queue_config(queue_name)
        try:
            return Schedule(name=name, job=job_name, queue=queue_name, payload=data, source=source, **fields)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'schedule'}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"schedule {name!r}: {detail}") from None

    # -- code-defined ------------------------------------------------------------------------------

    def define(self, name: str, **options: Any) -> Schedule:
        """Add a code-defined schedule (what ``app.schedule`` and ``@app.job(cron=...)`` call)."""
        if name in self._code:
            raise ConfigurationError(f"a schedule named {name!r} is already defined")
        schedule = self.build(name, source="code", **options)
        self._code[name] = schedule
        return schedule

    def code_defined(self) -> builtins.list[Schedule]:
        """The schedules defined in code, by name: what ``jobqueue sam export`` renders."""
        return [self._code[name] for name in sorted(self._code)]

    # -- dynamic --------------------------------------------------------------------------------------

    @property
    def store(self) -> ScheduleStore:
        """The backend's store of dynamic schedules."""
        return self._app.backend.schedule_store()

    def add(
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
        """Create or replace a dynamic schedule (say one per tenant: ``"sync:org-123"``)."""
        if name in self._code:
            raise ConfigurationError(f"schedule {name!r} is defined in code; a dynamic schedule needs another name")
        schedule = self.build(name, cron=cron, job=job, payload=payload, tz=tz, missed=missed, queue=queue, source="dynamic")
        self.store.add(schedule)
        return schedule

    def remove(self, name: str) -> bool:
        """Delete a dynamic schedule; False if there was none. Code-defined ones are removed in code."""
        if name in self._code:
            raise ConfigurationError(f"schedule {name!r} is defined in code; remove it from the code")
        return self.store.remove(name)

    def dynamic(self) -> builtins.list[Schedule]:
        return self.store.list()

    # -- reading -------------------------------------------------------------------------------------

    def get(self, name: str) -> Schedule | None:
        return self._code.get(name) or self.store.get(name)

    def list(self) -> builtins.list[Schedule]:
        """Every schedule: code-defined ones first, then dynamic ones, each by name."""
        return [*self.code_defined(), *(s for s in self.dynamic() if s.name not in self._code)]

    def describe(self, now: float | None = None) -> builtins.list[dict[str, Any]]:
        """Each schedule as JSON-ready data with its next fire time (``jobqueue schedules list``)."""
        moment = self._app.clock.now() if now is None else now
        return [schedule.describe(moment) for schedule in self.list()]

    def __len__(self) -> int:
        return len(self.list())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    # -- firing in this process --------------------------------------------------------------------------

    def ticker(self, **options: Any) -> Ticker:
        """A new :class:`~jobqueue.schedules.ticker.Ticker` for this app (a worker runs one)."""
        from jobqueue.schedules.ticker import Ticker

        return Ticker(self._app, **options)

    def tick(self) -> builtins.list[Fired]:
        """Fire what is due at the app clock's now, in this process; returns what fired.

        For the sync and memory backends and tests: move a :class:`~jobqueue.FakeClock`, call
        ``tick()``, and see each fire once (the sync backend runs the jobs at once; memory queues
        them for ``run_until_empty()``). The first call only starts the schedules' cursors.
        """
        if self._ticker is None:
            self._ticker = self.ticker(owner="local")
        return self._ticker.tick()
