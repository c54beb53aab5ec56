"""An app for the CLI tests: the memory backend, so state lives in the test process."""

from __future__ import annotations

from pydantic import BaseModel

from jobqueue import JobQueue


class Greeting(BaseModel):
    name: str


app = JobQueue(backend="memory")


@app.job
def greet(payload: Greeting) -> str:
    return f"hello {payload.name}"


def reset() -> None:
    """A fresh store for each test."""
    app._backend = None
