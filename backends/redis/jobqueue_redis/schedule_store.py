"""Dynamic schedules, the ticker's cursors and its leader lease, kept in Redis.

Three keys under the app prefix, with a hash tag of their own so they share one slot on a cluster
(and never one of a queue's slots, whose tag is the queue name):

- ``<prefix>:{<prefix>:schedules}:defs``: hash, schedule name -> ``Schedule.model_dump_json()``
- ``<prefix>:{<prefix>:schedules}:cursors``: hash, schedule name -> fired-up-to (epoch seconds, a float's repr)
- ``<prefix>:{<prefix>:schedules}:leader``: string, the lease holder's id, with the lease as its TTL

Every write that reads first is one Lua script, so it is atomic: a cursor only moves forward (a max
in Lua), the lease is taken with ``SET NX PX``, renewed and released only by its holder (compare then
``PEXPIRE`` / ``DEL``). The lease's time is Redis's clock, not a worker's.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from jobqueue.schedules.model import Schedule
from jobqueue_redis.connection import bounded

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

T = TypeVar("T")

#: KEYS: defs, cursors. ARGV: name. Deletes the schedule and its cursor; 1 if the schedule existed.
_REMOVE = """
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
"""

#: KEYS: cursors. ARGV: name, fired until. Sets the cursor to the larger of the two; returns it.
_SET_CURSOR = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(current) >= tonumber(ARGV[2]) then
  return current
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
"""

#: KEYS: leader. ARGV: owner, ttl in ms. Takes a free lease, renews our own; 1 if we hold it now.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: KEYS: leader. ARGV: owner. Deletes the lease only if we hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def schedule_keys(prefix: str) -> tuple[str, str, str]:
    """The keys ``(defs, cursors, leader)`` of an app prefix."""
    base = f"{prefix}:{{{prefix}:schedules}}:"
    return base + "defs", base + "cursors", base + "leader"


class RedisScheduleStore:
    """A :class:`~jobqueue.schedules.store.ScheduleStore` in Redis, shared by every worker and client of a prefix.

    Calls retry transient failures for the backend's ``retry_for`` seconds, then raise
    :class:`~jobqueue.errors.BrokerUnavailable` (each call is safe to repeat).
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.defs, self.cursors, self.leader_key = schedule_keys(backend.settings.prefix)
        client = backend.client
        self._remove = client.register_script(_REMOVE)
        self._set_cursor = client.register_script(_SET_CURSOR)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        return bounded(self.backend.settings, what, call)

    @property
    def _client(self) -> Any:
        return self.backend.client

    # -- dynamic schedules ---------------------------------------------------------------------------

    def add(self, schedule: Schedule) -> None:
        self._call("add schedule", lambda: self._client.hset(self.defs, schedule.name, schedule.model_dump_json()))

    def remove(self, name: str) -> bool:
        return bool(int(self._call("remove schedule", lambda: self._remove(keys=[self.defs, self.cursors], args=[name]))))

    def get(self, name: str) -> Schedule | None:
        raw = self._call("get schedule", lambda: self._client.hget(self.defs, name))
        return None if raw is None else Schedule.model_validate_json(raw)

    def list(self) -> builtins.list[Schedule]:
        raw: dict[str, str] = self._call("list schedules", lambda: self._client.hgetall(self.defs))
        return [Schedule.model_validate_json(raw[name]) for name in sorted(raw)]

    # -- the ticker's state ------------------------------------------------------------------------------

    def get_cursor(self, name: str) -> float | None:
        raw = self._call("get schedule cursor", lambda: self._client.hget(self.cursors, name))
        return None if raw is None else float(raw)

    def set_cursor(self, name: str, fired_until: float) -> None:
        self._call("set schedule cursor", lambda: self._set_cursor(keys=[self.cursors], args=[name, repr(float(fired_until))]))

    def acquire_leader(self, owner: str, ttl: float) -> bool:
        ms = max(int(ttl * 1000), 1)
        return bool(int(self._call("take the schedule lease", lambda: self._acquire(keys=[self.leader_key], args=[owner, ms]))))

    def release_leader(self, owner: str) -> None:
        self._call("release the schedule lease", lambda: self._release(keys=[self.leader_key], args=[owner]))

    def leader(self) -> str | None:
        """Who holds the lease now (for tests and ``jobqueue schedules list``)."""
        value: str | None = self._call("read the schedule lease", lambda: self._client.get(self.leader_key))
        return value
