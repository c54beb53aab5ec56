"""The app the multi-process ticker test runs workers of: ``python -m jobqueue.cli --app tests.schedules.ticker_app:app worker``.

An every-minute schedule whose job records its fire (job id and the pid that ran it) in a Redis list
under ``{<JOBQUEUE_PREFIX>-log}:fires``, so the test, in another process, can count every run.
"""

from __future__ import annotations

import logging
import os

import redis
from pydantic import BaseModel

from jobqueue import JobContext, JobQueue

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

app = JobQueue.from_env()
_log: redis.Redis | None = None


def fires_key(prefix: str) -> str:
    return f"{{{prefix}-log}}:fires"


class Empty(BaseModel):
    pass


@app.job(queue="ticks", cron="* * * * *")
def every_minute(payload: Empty, ctx: JobContext) -> str:
    global _log
    if _log is None:
        _log = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    _log.rpush(fires_key(app.settings.prefix), f"{ctx.job_id}|{os.getpid()}")
    return ctx.job_id
