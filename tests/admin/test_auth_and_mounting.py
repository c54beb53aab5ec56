"""Who may use the admin app, and mounting it inside a host app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from starlette.testclient import TestClient

from jobqueue import ConfigurationError, JobQueue

ADMIN_TOKEN = "s3cr3t"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> JobQueue:
    monkeypatch.delenv("JOBQUEUE_ADMIN_TOKEN", raising=False)
    jq = JobQueue(backend="memory")
    jq.queue("email")
    return jq


def test_refuses_to_build_without_token_or_auth(app: JobQueue) -> None:
    with pytest.raises(ConfigurationError, match="JOBQUEUE_ADMIN_TOKEN"):
        app.admin_asgi()


def test_token_from_the_environment(app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_ADMIN_TOKEN", ADMIN_TOKEN)
    client = TestClient(app.admin_asgi())
    assert client.get("/api/stats").status_code == 401
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    assert client.get("/api/stats", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}).status_code == 401


def test_token_from_settings() -> None:
    jq = JobQueue.from_env({"JOBQUEUE_BACKEND": "memory", "JOBQUEUE_ADMIN_TOKEN": "from-settings"})
    assert "from-settings" not in repr(jq.settings)
    client = TestClient(jq.admin_asgi())
    assert client.get("/api/health", headers={"Authorization": "Bearer from-settings"}).status_code == 200


@pytest.mark.parametrize("is_async", [False, True])
def test_host_app_auth_callable(app: JobQueue, is_async: bool) -> None:
    def staff(request: Request) -> bool:
        return request.headers.get("x-user") == "staff"

    async def astaff(request: Request) -> bool:
        return staff(request)

    client = TestClient(app.admin_asgi(auth=astaff if is_async else staff))
    assert client.get("/api/stats").status_code == 401
    assert client.get("/api/stats", headers={"X-User": "staff"}).status_code == 200
    assert client.post("/api/queues/email/pause", headers={"X-User": "staff"}).json()["paused"] is True


def test_loopback_only_serves_loopback_clients(app: JobQueue) -> None:
    from jobqueue.admin import create_admin_app

    asgi = create_admin_app(app, loopback_only=True)
    assert TestClient(asgi, client=("127.0.0.1", 4000)).get("/api/stats").status_code == 200
    assert TestClient(asgi, client=("::1", 4000)).get("/api/stats").status_code == 200
    assert TestClient(asgi, client=("10.1.2.3", 4000)).get("/api/stats").status_code == 401


def test_mounted_under_a_prefix(app: JobQueue) -> None:
    host = Starlette(routes=[Mount("/admin", app=app.admin_asgi(token=ADMIN_TOKEN))])
    client = TestClient(host)
    page = client.get("/admin/")
    assert page.status_code == 200 and '<meta name="jobqueue-base" content="/admin">' in page.text
    assert 'src="/admin/static/app.js"' in page.text
    assert client.get("/admin/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/admin/static/app.css").status_code == 200
    assert client.get("/admin/static/secrets.txt").status_code == 404
    assert client.get("/admin/api/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["queues"]["email"]["paused"] is False
    assert client.get("/admin/api/openapi.json").json()["servers"] == [{"url": "/admin"}]


def test_the_page_fetches_nothing_from_a_network() -> None:
    from importlib import resources

    static = resources.files("jobqueue.admin").joinpath("static")
    for name in ("index.html", "app.js", "app.css"):
        text = static.joinpath(name).read_text("utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, name
        assert "//cdn" not in text and "@import" not in text


def test_import_jobqueue_does_not_import_starlette() -> None:
    import subprocess
    import sys

    code = "import sys, jobqueue; jobqueue.JobQueue(backend='memory'); print(any(m.startswith(('starlette', 'uvicorn', 'opentelemetry')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
