"""The Lua scripts: each state transition is one atomic script over the keys of one queue."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, ResponseError

from jobqueue_redis.prelude import lean, statements

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

NAMES = (
    "enqueue", "enqueue_many", "claim", "finish", "progress", "heartbeat", "release", "cancel", "retry", "stats", "clean", "pause",
    "link", "resolve", "parents", "followups", "group", "idle",
)

#: what finish.lua answers (cancel.lua: the first) when the job ended with a follow-up to run: it has dependents...
FOLLOW_UP = 2
#: ... or it is a group member without dependents (none can come later: a parent's end is frozen)
FOLLOW_UP_GROUP = 3
FOLLOW_UPS = (FOLLOW_UP, FOLLOW_UP_GROUP)

#: how many ARGV items one finish.lua call takes
FINISH_ARGC = 11
#: finish.lua's arguments that are the same for every outcome of one queue (now, retention, capped) go once in
#: a cycle's ARGV; each outcome then takes CYCLE_ARGC (see :func:`jobqueue_redis.codec.outcome_args`)
CYCLE_ARGC = FINISH_ARGC - 3

# The worker's hot path: record a batch of outcomes and claim the next jobs of one queue in one round trip.
# Composed from finish.lua and claim.lua unchanged, each wrapped as a function whose ARGV parameter shadows
# the script's (a change to either script is picked up here). ARGV: n, now, retention, capped, then n x
# CYCLE_ARGC finish arguments (finish.lua's without the shared three), then claim.lua's arguments (none: claim
# nothing). Returns {finish results, claim reply or false}.
# Wake-ups (LPUSH to the signal list) and retention run once at the end of the call, not once per job; the
# finished jobs leave the active set and enter their finished sets in one command each before the claim.
_CYCLE = """
local function finish_one(ARGV)
{finish}
end
local function claim_some(ARGV)
{claim}
end
local n = tonumber(ARGV[1])
local now_s, retention, capped = ARGV[2], ARGV[3], ARGV[4]
local done = {{}}
local at = 5
local a = ARGV
begin_batch()  -- wake-ups and retention once for the whole call
for j = 1, n do
  done[j] = finish_one({{a[at], a[at + 1], now_s, a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6], a[at + 7],
    retention, capped}})
  at = at + {argc}
end
flush_batch()  -- the claim counts and reaps the active set: the finished jobs are out of it first
local claimed = false
if at <= #ARGV then
  claimed = claim_some({{unpack(ARGV, at, #ARGV)}})
end
end_batch()
-- a claim that left nothing waiting: the wake-ups queued so far are stale (whoever took them would find
-- nothing); drop them. Anything enqueued or promoted later pushes its own. A claim that got all it asked
-- for skips the look (it likely left work waiting; a stale wake-up costs a worker one empty claim).
if claimed and #claimed[1] < 4 * tonumber(ARGV[at + 1]) and (drained or redis.call('ZCARD', WAITING) == 0) then
  redis.call('DEL', SIGNAL)
end
return {{done, claimed}}
"""

# The wake-up path's claim (RedisBackend.wait_and_claim), after a BLPOP: claim.lua with the server's clock as "now"
# (args[3]: the lease) and the cycle's stale wake-up check, without the cycle's outcomes and their prelude.
# With ARGV[11] (the worker's idle.lua registration, 'token|lease'), the registration goes first, and a job
# enqueue.lua handed to its inbox after the BLPOP returned is taken, in place of one of the jobs to claim.
# Returns {claim.lua's reply, the handed job's fields or false}.
_WAKE = """
local function claim_some(ARGV)
{claim}
end
local args = {{unpack(ARGV, 1, 10)}}
local handed = false
if ARGV[11] then
  redis.call('ZREM', IDLE, ARGV[11])
  handed = redis.call('LPOP', base .. 'inbox:' .. string.match(ARGV[11], '^(.*)|[^|]*$'))
  if handed then args[2] = tostring(tonumber(args[2]) - 1) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
args[1] = string.format('%.6f', now)
args[3] = lease_ms(now + tonumber(args[3]))
local claimed = claim_some(args)
if #claimed[1] < 4 * tonumber(args[2]) and (drained or redis.call('ZCARD', WAITING) == 0) then
  redis.call('DEL', SIGNAL)
end
return {{claimed, handed}}
"""


def _load(name: str) -> str:
    return _lua_dir().joinpath(f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def _lua_dir() -> Path | Traversable:
    """Where the scripts are: the package's folder, read directly (importlib.resources costs a process's first
    enqueue ~0.9 ms of imports), or through importlib.resources where the package is not on disk (a zip)."""
    here = Path(__file__).with_name("lua")
    if here.is_dir():
        return here
    from importlib import resources

    return resources.files(__package__).joinpath("lua")


class Script:
    """One script: its text and SHA1; called with EVALSHA, loaded again on NOSCRIPT (after a Redis restart)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode("utf-8")).hexdigest()

    def __call__(self, client: Any, base: str, args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, 1, base, *args)
        except NoScriptError:
            client.script_load(self.text)
            return client.evalsha(self.sha, 1, base, *args)

    async def acall(self, client: Any, base: str, args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, 1, base, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, 1, base, *args)

    def queue(self, pipe: Any, base: str, args: Sequence[Any]) -> None:
        """Add a call to a (non-transactional) pipeline; see :func:`run_pipeline`."""
        pipe.evalsha(self.sha, 1, base, *args)


class Scripts:
    """All scripts, each with what it uses of the shared prelude prepended (see :mod:`jobqueue_redis.prelude`).

    A script is read and hashed on first use (a worker starts with only ``cycle``); :meth:`all` builds every one.
    """

    enqueue: Script
    enqueue_many: Script
    claim: Script
    finish: Script
    progress: Script
    heartbeat: Script
    release: Script
    cancel: Script
    retry: Script
    stats: Script
    clean: Script
    pause: Script
    link: Script
    resolve: Script
    parents: Script
    followups: Script
    group: Script
    idle: Script
    cycle: Script
    wake: Script

    def __init__(self) -> None:
        #: ids of the clients whose server(s) got every script loaded by a pipeline run
        self.loaded: set[int] = set()

    def __getattr__(self, name: str) -> Script:  # only for a script not built yet
        if name == "cycle":
            text = _CYCLE.format(finish=_load("finish"), claim=_load("claim"), argc=CYCLE_ARGC)
        elif name == "wake":
            text = _WAKE.format(claim=_load("claim"))
        elif name in NAMES:
            text = _load(name)
        else:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        # setdefault: two threads building the same script keep one object (callers compare scripts with `is`)
        script: Script = self.__dict__.setdefault(name, Script(name, lean(_prelude(), text) + "\n" + text))
        return script

    def all(self) -> list[Script]:
        return [getattr(self, name) for name in (*NAMES, "cycle", "wake")]


@functools.cache
def _prelude() -> list[tuple[str, str]]:
    return statements(_load("_lib"))


def is_noscript(value: Any) -> bool:
    return isinstance(value, NoScriptError) or (isinstance(value, ResponseError) and str(value).startswith("NOSCRIPT"))


def _is_cluster(client: Any) -> bool:
    return hasattr(client, "get_node_from_key") and hasattr(client, "get_redis_connection")


def _pipelined(client: Any, calls: Sequence[tuple[Script, str, Sequence[Any]]]) -> list[Any]:
    """One pipeline per node; redis-py's cluster pipeline refuses EVALSHA, so a cluster gets one
    plain pipeline per primary, grouped by the slot of each call's key (moved slots are retried one by one)."""
    if not _is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for script, base, args in calls:
            script.queue(pipe, base, args)
        return list(pipe.execute(raise_on_error=False))
    groups: dict[str, tuple[Any, list[int]]] = {}
    for i, (_, base, _) in enumerate(calls):
        node = client.get_node_from_key(base)
        groups.setdefault(node.name, (node, []))[1].append(i)
    results: list[Any] = [None] * len(calls)
    for node, indexes in groups.values():
        pipe = client.get_redis_connection(node).pipeline(transaction=False)
        for i in indexes:
            script, base, args = calls[i]
            script.queue(pipe, base, args)
        for i, value in zip(indexes, pipe.execute(raise_on_error=False)):
            results[i] = value
    for i, value in enumerate(results):
        if isinstance(value, ResponseError) and str(value).startswith(("MOVED", "ASK")):
            script, base, args = calls[i]
            results[i] = script(client, base, args)
    return results


def load_once(client: Any, scripts: Scripts) -> None:
    """Load every script into ``client``'s server(s), once per client (before calls that cannot load them one by one)."""
    if id(client) not in scripts.loaded:
        for script in scripts.all():
            client.script_load(script.text)
        scripts.loaded.add(id(client))


def run_pipeline(client: Any, scripts: Scripts, calls: Sequence[tuple[Script, str, Sequence[Any]]]) -> list[Any]:
    """Run script calls in one round trip per node.

    Calls refused with NOSCRIPT (Redis restarted and lost its script cache) are run again
    after loading the scripts; the calls that did run are not repeated.
    """
    if len(calls) > 1:
        load_once(client, scripts)  # a fresh server would refuse the whole first pipeline
    results = _pipelined(client, calls)
    missing = [i for i, r in enumerate(results) if is_noscript(r)]
    if missing:
        for script in scripts.all():
            client.script_load(script.text)
        again = _pipelined(client, [calls[i] for i in missing])
        for i, value in zip(missing, again):
            results[i] = value
    return results


async def arun_pipeline(client: Any, scripts: Scripts, calls: Sequence[tuple[Script, str, Sequence[Any]]]) -> list[Any]:
    """:func:`run_pipeline` for an asyncio client (a cluster client sends the calls concurrently instead)."""
    if _is_async_cluster(client):
        return list(await asyncio.gather(*(script.acall(client, base, args) for script, base, args in calls), return_exceptions=True))
    pipe = client.pipeline(transaction=False)
    for script, base, args in calls:
        script.queue(pipe, base, args)
    results = list(await pipe.execute(raise_on_error=False))
    missing = [i for i, r in enumerate(results) if is_noscript(r)]
    if missing:
        for script in scripts.all():
            await client.script_load(script.text)
        pipe = client.pipeline(transaction=False)
        for i in missing:
            script, base, args = calls[i]
            script.queue(pipe, base, args)
        for i, value in zip(missing, await pipe.execute(raise_on_error=False)):
            results[i] = value
    return results


def _is_async_cluster(client: Any) -> bool:
    return type(client).__module__.startswith("redis.asyncio.cluster")
