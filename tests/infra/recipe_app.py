"""A one-job app for the recipe test: JOBQUEUE_APP=recipe_app:app with tests/infra on PYTHONPATH."""

from pydantic import BaseModel

from jobqueue import JobContext, JobQueue

app = JobQueue.from_env()


class Ping(BaseModel):
    marker: str


@app.job(queue="default")
def ping(payload: Ping, ctx: JobContext) -> dict:
    return {"pong": payload.marker}
