"""The app the SQS measurement uses (``JOBQUEUE_APP=bench.peers.sqs_app:app``): one no-op job on queue ``bench``.

No Redis on this path: the job does nothing, so every AWS request counted is jobqueue's own.
"""

from __future__ import annotations

from pydantic import BaseModel

from jobqueue import JobQueue

app = JobQueue.from_env()
app.queue("bench")


class Tick(BaseModel):
    t: float = 0.0


@app.job(queue="bench")
def noop(payload: Tick) -> None:
    return None
