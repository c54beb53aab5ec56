"""The libraries the bench measures, and how each one's workers are launched.

Pure data: the harness reads this without importing any peer library. Each library has one
adapter module (``bench/peers/<name>_peer.py``) that defines the no-op ``INCR`` job and exposes
``producer()`` -> an object with ``one(t)`` and, where the library has a bulk API, ``bulk(ts)``
(both may be coroutines), plus ``close()``. Workers are launched as the library's users launch
them, with their CLI where they have one; argv items may use ``{bin}`` (the virtualenv's bin
directory) and ``{py}`` (its python).

A *setup* is what a user picks: a library plus a worker model (RQ's forking Worker or its
SimpleWorker, Celery prefork or threads). Each setup has a ``default`` launch (what the docs'
first command starts) and, where the library can, ``c10``: one process running 10 jobs at once.
Where the default launch already is one process at concurrency 10, ``c10`` is ``"default"``
and is measured once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Library:
    name: str
    module: str            # the adapter module, imported in the library's virtualenv
    venv: str              # "peers" (bench/.venv-peers, jobqueue included: one redis-py for all) or "project" (.venv)
    dists: tuple[str, ...]  # distributions whose versions the report shows
    bulk: str | None = None  # the bulk API's name, or None when the library has none


@dataclass(frozen=True)
class Setup:
    name: str
    library: str
    default: tuple[str, ...]
    c10: tuple[str, ...] | str | None = None  # argv, "default" (the default launch already is), or None (cannot)
    note: str = ""
    default_note: str = ""
    c10_note: str = ""
    env: tuple[tuple[str, str], ...] = ()  # set for this setup's workers


LIBRARIES: dict[str, Library] = {
    lib.name: lib
    for lib in [
        Library("jobqueue", "bench.peers.jobqueue_peer", "peers", ("jobqueue", "jobqueue-redis", "redis"), "enqueue_many"),
        Library("rq", "bench.peers.rq_peer", "peers", ("rq",), "Queue.enqueue_many"),
        Library("arq", "bench.peers.arq_peer", "peers", ("arq",)),
        Library("celery", "bench.peers.celery_peer", "peers", ("celery", "kombu"), "group().apply_async"),
        Library("dramatiq", "bench.peers.dramatiq_peer", "peers", ("dramatiq",)),
        Library("huey", "bench.peers.huey_peer", "peers", ("huey",)),
        Library("taskiq", "bench.peers.taskiq_peer", "peers", ("taskiq", "taskiq-redis")),
        Library("saq", "bench.peers.saq_peer", "peers", ("saq",)),
        Library("bullmq", "bench.peers.bullmq_peer", "peers", ("bullmq",), "Queue.addBulk"),
    ]
}

_JQ = ("{bin}/jobqueue", "--app", "bench.peers.jobqueue_peer:app", "worker")

SETUPS: dict[str, Setup] = {
    s.name: s
    for s in [
        Setup("jobqueue", "jobqueue", _JQ, (*_JQ, "--processes", "1"),
              default_note="`jobqueue worker` (one process per core, concurrency 10 each)", c10_note="`--processes 1`"),
        # the same worker with the job written as ``async def`` (on the worker's event loop): a figure of its own, not a peer
        Setup("jobqueue-async", "jobqueue", _JQ, (*_JQ, "--processes", "1"),
              default_note="`jobqueue worker`, the job as `async def`", c10_note="`--processes 1`",
              env=(("BENCH_JOBQUEUE_ASYNC", "1"),)),
        Setup("rq", "rq", ("{bin}/rq", "worker", "--url", "{redis_url}", "bench"), None,
              default_note="`rq worker` (forks a work horse per job)", note="no in-process concurrency"),
        Setup("rq-simple", "rq", ("{bin}/rq", "worker", "--url", "{redis_url}", "-w", "rq.worker.SimpleWorker", "bench"), None,
              default_note="`rq worker -w rq.worker.SimpleWorker`", note="no in-process concurrency"),
        Setup("arq", "arq", ("{bin}/arq", "bench.peers.arq_peer.WorkerSettings"), "default",
              default_note="`arq` (one process, max_jobs=10)"),
        Setup("celery-prefork", "celery", ("{bin}/celery", "-A", "bench.peers.celery_peer", "worker"), None,
              default_note="`celery worker` (prefork, one child per core)", note="prefork runs jobs in child processes"),
        Setup("celery-threads", "celery", ("{bin}/celery", "-A", "bench.peers.celery_peer", "worker", "-P", "threads"),
              ("{bin}/celery", "-A", "bench.peers.celery_peer", "worker", "-P", "threads", "-c", "10"),
              default_note="`celery worker -P threads` (threads = cores)", c10_note="`-P threads -c 10`"),
        Setup("dramatiq", "dramatiq", ("{bin}/dramatiq", "bench.peers.dramatiq_peer"),
              ("{bin}/dramatiq", "bench.peers.dramatiq_peer", "-p", "1", "-t", "10"),
              default_note="`dramatiq` (one process per core, 8 threads each)", c10_note="`-p 1 -t 10`"),
        Setup("huey", "huey", ("{bin}/huey_consumer", "bench.peers.huey_peer.huey"),
              ("{bin}/huey_consumer", "bench.peers.huey_peer.huey", "-k", "thread", "-w", "10"),
              default_note="`huey_consumer` (one worker thread)", c10_note="`-k thread -w 10`"),
        Setup("taskiq", "taskiq", ("{bin}/taskiq", "worker", "bench.peers.taskiq_peer:broker"),
              ("{bin}/taskiq", "worker", "bench.peers.taskiq_peer:broker", "--workers", "1", "--max-async-tasks", "10"),
              default_note="`taskiq worker` (2 processes, 100 async tasks each)", c10_note="`--workers 1 --max-async-tasks 10`"),
        Setup("saq", "saq", ("{bin}/saq", "bench.peers.saq_peer.settings"), "default",
              default_note="`saq` (one process, concurrency 10)"),
        Setup("bullmq", "bullmq", ("{py}", "-m", "bench.peers.bullmq_peer"),
              ("{py}", "-m", "bench.peers.bullmq_peer", "--concurrency", "10"),
              default_note="a `Worker` script (concurrency 1)", c10_note="`Worker(concurrency=10)`"),
    ]
}

PEER_SETUPS = [name for name, setup in SETUPS.items() if setup.library != "jobqueue"]
