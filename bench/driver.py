"""The producer side of one measurement, run in a fresh interpreter inside the library's virtualenv.

    python -m bench.driver check LIB
    python -m bench.driver enqueue LIB --mode one|bulk|paced --n N [--batch 1000] [--interval 0.002] [--stamp]

Prints one JSON object on stdout. ``enqueue`` times the enqueue loop alone (imports and the
producer's construction are outside the clock; a lazy first connection is inside it). ``--stamp``
passes each job its wall-clock enqueue time, so the job records its pick-up latency; otherwise
jobs get ``t=0`` and do nothing but the counter's ``INCR``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
import time
from importlib import metadata
from typing import Any

from bench.peers import LIBRARIES


def _versions(dists: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for dist in (*dists, "redis"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def check(lib: str) -> dict[str, Any]:
    library = LIBRARIES[lib]
    out: dict[str, Any] = {"lib": lib, "python": sys.version.split()[0], "versions": _versions(library.dists)}
    try:
        module = importlib.import_module(library.module)
    except Exception as exc:  # the library is missing or broken: skip it, saying why
        out.update(ok=False, reason=f"cannot import {library.module}: {type(exc).__name__}: {exc}")
        return out
    reason = module.unavailable() if hasattr(module, "unavailable") else None
    out.update(ok=reason is None, reason=reason)
    return out


async def _call(fn: Any, *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def enqueue(lib: str, mode: str, n: int, batch: int, interval: float, stamp: bool) -> dict[str, Any]:
    module = importlib.import_module(LIBRARIES[lib].module)
    producer = module.producer()
    one = producer.one
    is_async = inspect.iscoroutinefunction(one)
    started = time.perf_counter()
    if mode == "one":
        if is_async:
            for _ in range(n):
                await one(time.time() if stamp else 0.0)
        else:
            for _ in range(n):
                one(time.time() if stamp else 0.0)
    elif mode == "bulk":
        bulk = getattr(producer, "bulk", None)
        if bulk is None:
            raise SystemExit(f"{lib} has no bulk API")
        for offset in range(0, n, batch):
            await _call(bulk, [0.0] * min(batch, n - offset))
    elif mode == "paced":
        # one job every `interval` seconds on an absolute schedule, each stamped with its enqueue time
        for i in range(n):
            due = started + i * interval
            while (now := time.perf_counter()) < due:
                time.sleep(min(due - now, 0.0005)) if due - now > 0.0003 else None
            if is_async:
                await one(time.time())
            else:
                one(time.time())
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    await _call(producer.close)
    return {"lib": lib, "mode": mode, "n": n, "seconds": seconds, "rate": n / seconds if seconds else None}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.driver")
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check")
    p_check.add_argument("lib", choices=sorted(LIBRARIES))
    p_enq = sub.add_parser("enqueue")
    p_enq.add_argument("lib", choices=sorted(LIBRARIES))
    p_enq.add_argument("--mode", choices=["one", "bulk", "paced"], default="one")
    p_enq.add_argument("--n", type=int, default=10_000)
    p_enq.add_argument("--batch", type=int, default=1000)
    p_enq.add_argument("--interval", type=float, default=0.002)
    p_enq.add_argument("--stamp", action="store_true")
    args = parser.parse_args()
    if args.command == "check":
        result = check(args.lib)
    else:
        result = asyncio.run(enqueue(args.lib, args.mode, args.n, args.batch, args.interval, args.stamp or args.mode == "paced"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
