"""The admin API's tests run on every backend with a conformance harness (sync, memory, and Redis/SQS when present)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from jobqueue import JobQueue
from tests.conformance.conftest import harness, jobs, pytest_generate_tests  # noqa: F401  (fixtures and parametrisation)
from tests.conformance.jobs import Jobs

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(app: JobQueue, **options: object) -> TestClient:
    return TestClient(app.admin_asgi(**options), client=("127.0.0.1", 50000))  # type: ignore[arg-type]


@pytest.fixture
def api(jobs: Jobs) -> Iterator[TestClient]:  # noqa: F811 - the conformance fixture, imported above
    with client_for(jobs.app, token=TOKEN) as client:
        client.headers.update(AUTH)
        yield client
