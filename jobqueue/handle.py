"""A handle on an enqueued job: its id, its status, its result."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from jobqueue.errors import JobCancelled, JobFailed, JobNotFound
from jobqueue.states import JobState
from jobqueue.status import JobStatus

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

_FIRST_POLL = 0.005
_MAX_POLL = 0.25


class JobHandle:
    """Returned by ``enqueue``. ``created`` is False when the id named a job that already existed."""

    def __init__(self, app: JobQueue, job_id: str, *, queue: str, name: str, created: bool = True) -> None:
        self.app = app
        self.id = job_id
        self.queue = queue
        self.name = name
        self.created = created

    def __repr__(self) -> str:
        return f"<JobHandle {self.name} id={self.id!r} queue={self.queue!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and (other.id, other.queue) == (self.id, self.queue)

    def __hash__(self) -> int:
        return hash((self.id, self.queue))

    # -- synchronous --------------------------------------------------------------

    def status(self) -> JobStatus | None:
        """The job's current status, or None once its record is gone."""
        return self.app.backend.get(self.id, queue=self.queue)

    def cancel(self) -> bool:
        """Cancel the job: a pending one is removed, an active one is asked to stop. False if already finished."""
        return self.app.backend.cancel(self.id, queue=self.queue)

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job is completed, failed or cancelled; :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_POLL
        while True:
            status = self.status()
            if status is None:
                raise JobNotFound(f"job {self.id!r} is not known on queue {self.queue!r} (never enqueued, or no longer retained)")
            if status.is_finished:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id!r} is still {status.state.value} after {timeout:g}s")
            time.sleep(pause if deadline is None else max(min(pause, deadline - time.monotonic()), 0))
            pause = min(pause * 2, _MAX_POLL)

    def result(self, timeout: float | None = None) -> Any:
        """The job's result once completed; :class:`JobFailed` or :class:`JobCancelled` otherwise."""
        return _result_of(self.wait(timeout))

    # -- asyncio twins ------------------------------------------------------------------

    async def astatus(self) -> JobStatus | None:
        return await self.app.backend.aget(self.id, queue=self.queue)

    async def acancel(self) -> bool:
        return await self.app.backend.acancel(self.id, queue=self.queue)

    async def await_done(self, timeout: float | None = None) -> JobStatus:
        """:meth:`wait` for asyncio code."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        pause = _FIRST_POLL
        while True:
            status = await self.astatus()
            if status is None:
                raise JobNotFound(f"job {self.id!r} is not known on queue {self.queue!r} (never enqueued, or no longer retained)")
            if status.is_finished:
                return status
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"job {self.id!r} is still {status.state.value} after {timeout:g}s")
            await asyncio.sleep(pause if deadline is None else max(min(pause, deadline - loop.time()), 0))
            pause = min(pause * 2, _MAX_POLL)

    async def aresult(self, timeout: float | None = None) -> Any:
        """:meth:`result` for asyncio code."""
        return _result_of(await self.await_done(timeout))


def _result_of(status: JobStatus) -> Any:
    if status.state is JobState.COMPLETED:
        return status.result
    if status.state is JobState.CANCELLED:
        raise JobCancelled(f"job {status.id!r} was cancelled")
    raise JobFailed(status.id, status.error)
