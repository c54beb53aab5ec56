"""examples/vercel: the function enqueues and reports status over HTTP, with credentials from an
assumed role (AssumeRoleWithWebIdentity on the request's OIDC token, answered by moto's STS)."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import urllib.request
import uuid
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobQueue

ROOT = Path(__file__).resolve().parents[2]


def _load_function() -> Any:
    spec = importlib.util.spec_from_file_location("vercel_jobs_function", ROOT / "examples" / "vercel" / "api" / "jobs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(url: str, *, data: dict[str, Any] | None = None, token: str = "oidc-token") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(), headers={"x-vercel-oidc-token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_vercel_function_with_oidc_role(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"v{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "jobs"))
    monkeypatch.delitem(sys.modules, "example_jobs", raising=False)
    for name, value in {"JOBQUEUE_SQS_PREFIX": prefix, "JOBQUEUE_JOBS_TABLE": f"{prefix}-jobs", "JOBQUEUE_BACKEND": "sqs",
                        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/vercel-producer"}.items():
        monkeypatch.setenv(name, value)
    from example_jobs import make_app
    from jobqueue_sqs import SQSBackend

    worker_app: JobQueue = make_app(SQSBackend())
    worker_app.backend.init()  # type: ignore[attr-defined]  # what `jobqueue sqs init` (or sam deploy) made

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)  # no static keys: only the assumed role's
    function = _load_function()
    server = HTTPServer(("127.0.0.1", 0), function.handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/api/jobs"
    try:
        code, created = _call(base, data={"user_id": 7, "email": "ada@example.com"})
        assert code == 202 and created["queue"] == "email"
        credentials = function.get_app(None).backend.clients.sqs._request_signer._credentials
        assert credentials.method == "vercel-oidc"
        code, waiting = _call(f"{base}?id={created['id']}")
        assert code == 200 and waiting["state"] == "waiting"
        assert _call(base, data={"user_id": "not a number"})[0] == 422
        assert _call(f"{base}?id=nope")[0] == 404
        worker_app.backend.drain()  # type: ignore[attr-defined]  # the worker function's part
        code, done = _call(f"{base}?id={created['id']}")
        assert done["state"] == "completed" and done["result"] == {"sent_to": "ada@example.com"}
    finally:
        server.shutdown()
        server.server_close()
