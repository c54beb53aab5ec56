"""Running a job inline: jobqueue's sync backend against Celery's eager ``apply()`` and Huey's immediate mode.

    python -m bench.sync_bench jobqueue-sync|celery-apply|huey-immediate [--n 10000]

The same job in each: take one float, bump an in-process counter. No broker is involved (Huey's
immediate mode keeps its storage in memory; Celery's ``apply()`` runs the task in the caller).
Prints the time per job, in microseconds, of ``n`` calls after 100 warm-up calls.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from pydantic import BaseModel  # jobqueue's payload model; pydantic is in both virtualenvs

COUNT = [0]


class Tick(BaseModel):
    t: float = 0.0


def bump(t: float) -> None:
    COUNT[0] += 1


def jobqueue_sync() -> Callable[[float], object]:
    from jobqueue import JobQueue

    app = JobQueue(backend="sync")

    @app.job(queue="bench")
    def job(payload: Tick) -> None:
        bump(payload.t)

    return lambda t: job.enqueue(t=t)


def celery_apply() -> Callable[[float], object]:
    from celery import Celery

    app = Celery("bench")  # no broker is contacted by apply()

    @app.task(name="bench.sync_job")
    def job(t: float) -> None:
        bump(t)

    return lambda t: job.apply(args=(t,))


def huey_immediate() -> Callable[[float], object]:
    from huey import MemoryHuey

    huey = MemoryHuey("bench", immediate=True)

    @huey.task()
    def job(t: float) -> None:
        bump(t)

    return lambda t: job(t)


CASES = {"jobqueue-sync": jobqueue_sync, "celery-apply": celery_apply, "huey-immediate": huey_immediate}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_bench")
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    call = CASES[args.case]()
    for _ in range(100):
        call(0.0)
    COUNT[0] = 0
    started = time.perf_counter()
    for _ in range(args.n):
        call(0.0)
    seconds = time.perf_counter() - started
    if COUNT[0] != args.n:
        raise SystemExit(f"{args.case}: ran {COUNT[0]} of {args.n} jobs")
    print(json.dumps({"case": args.case, "n": args.n, "seconds": seconds, "per_job_us": seconds / args.n * 1e6,
                      "rate": args.n / seconds}))


if __name__ == "__main__":
    main()
