"""The app of the secrets end-to-end test: ``python -m tests.security.secrets_app`` runs a worker logging at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel

from jobqueue import JobContext, JobQueue, Secret

QUEUE = "signup"


class Card(BaseModel):
    number: Annotated[str, Secret()]  # secret by annotation
    brand: str


class Signup(BaseModel):
    email: str
    password: str  # secret by the job's secret_fields
    card: Card
    outcome: str = "complete"


def signup(payload: Signup, ctx: JobContext) -> dict[str, str]:
    ctx.logger.info("signing up %s", payload.email)
    ctx.progress(50)
    if payload.outcome == "fail":
        raise ValueError("the card was declined")
    return {"welcomed": payload.email}


def build(environ: Mapping[str, str] | None = None) -> JobQueue:
    made = JobQueue.from_env(environ)
    made.queue(QUEUE, attempts=1)
    made.job(queue=QUEUE, secret_fields=["password"])(signup)
    return made


app = build()

if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    app.backend.run_worker(concurrency=2)
