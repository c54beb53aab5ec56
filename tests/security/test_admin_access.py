"""The admin API refuses requests without its token, and compares tokens in constant time; so does the
webhook signature check."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from jobqueue import JobQueue
from jobqueue.webhooks import sign, verify_signature

TOKEN = "admin-token-" + "k" * 40


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[object, object]]]:
    """Every hmac.compare_digest call (it still compares; the spy only records)."""
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: object, b: object) -> bool:
        calls.append((a, b))
        return real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield calls


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("JOBQUEUE_ADMIN_TOKEN", raising=False)
    app = JobQueue(backend="memory")
    app.queue("email")
    with TestClient(app.admin_asgi(token=TOKEN), raise_server_exceptions=False) as made:
        yield made
    app.close()


def test_the_token_is_compared_with_compare_digest(client: TestClient, compare_calls: list[tuple[object, object]]) -> None:
    assert client.get("/api/stats", headers={"Authorization": "Bearer not-the-token"}).status_code == 401
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert compare_calls == [(b"not-the-token", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize(
    "headers",
    [
        {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Token {TOKEN}"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN.upper()}"}, {"Authorization": f"Bearer {TOKEN} {TOKEN}"},
        {"Authorization": "Bearer " + "A" * 20_000}, {"Authorization": b"Bearer caf\xe9\xff"}, {"X-Admin-Token": TOKEN},
        {"Cookie": f"token={TOKEN}"},
    ],
)
def test_requests_without_the_right_token_are_refused(client: TestClient, headers: dict[str, str | bytes]) -> None:
    for method, path in [("GET", "/api/stats"), ("GET", "/api/jobs"), ("POST", "/api/queues/email/pause"), ("GET", "/metrics")]:
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 401, (path, headers, answer.status_code)
        assert answer.headers["www-authenticate"] == "Bearer" and TOKEN not in answer.text


def test_the_token_is_not_taken_from_the_url(client: TestClient) -> None:
    assert client.get(f"/api/stats?token={TOKEN}").status_code == 401
    assert client.get(f"/api/stats?access_token={TOKEN}").status_code == 401


def test_the_page_served_without_a_token_does_not_carry_it(client: TestClient) -> None:
    for path in ("/", "/static/app.js", "/api/openapi.json"):
        answer = client.get(path)
        assert answer.status_code == 200 and TOKEN not in answer.text


def test_webhook_signatures_are_compared_with_compare_digest(compare_calls: list[tuple[object, object]]) -> None:
    body, secret, now = json.dumps({"id": "e1"}).encode(), "whsec", int(time.time())
    good = sign(body, secret, now)
    assert verify_signature(body, good, now, secret)
    assert not verify_signature(body + b" ", good, now, secret)
    assert not verify_signature(body, good, now - 3600, secret), "an old timestamp is a replay"
    assert len(compare_calls) == 2 and all(isinstance(a, str) and a.startswith("v1=") for a, _ in compare_calls)
