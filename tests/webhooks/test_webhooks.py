"""Webhooks: signed events reach a local receiver; a tampered body fails; a receiver that is down never hurts the job."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from jobqueue import FakeClock, JobQueue, JobState
from jobqueue.envelope import Envelope
from jobqueue.webhooks import WEBHOOK_QUEUE, sign, verify_request, verify_signature

SECRET = "whsec-test"


class Receiver:
    """A local HTTP server that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((dict(self.headers.items()), body))
                receiver.arrived.set()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/down"


class Signup(BaseModel):
    email: str
    password: str = ""


def make_app(backend: str, url: str, **webhook: Any) -> tuple[JobQueue, Any]:
    app = JobQueue(backend=backend, clock=FakeClock(start=time.time()))
    app.webhooks.configure(secret=SECRET, **webhook)
    app.queue("signups", attempts=2, webhook=url)

    @app.job(queue="signups", secret_fields=["password"])
    def signup(payload: Signup) -> dict[str, str]:
        if payload.email == "bad":
            raise ValueError("bad email")
        return {"welcomed": payload.email}

    return app, signup


def test_receiver_gets_a_correctly_signed_event(receiver: Receiver) -> None:
    app, signup = make_app("memory", receiver.url)
    handle = signup.enqueue(email="a@b.c", password="hunter2")
    app.backend.run_until_empty()
    assert handle.status().state is JobState.COMPLETED
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify_request(headers, body, SECRET)
    assert headers["X-Jobqueue-Event"] == "job.completed" and headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["type"] == "job.completed" and event["job"]["id"] == handle.id and event["job"]["state"] == "completed"
    assert event["job"]["result"] == {"welcomed": "a@b.c"}
    assert event["job"]["payload"] == {"email": "a@b.c", "password": "[redacted]"}
    assert b"hunter2" not in body
    # the delivery is a job of its own, completed
    deliveries = app.list_jobs(WEBHOOK_QUEUE, "completed").jobs
    assert len(deliveries) == 1 and deliveries[0].result["status"] == 204


def test_tampered_body_old_timestamp_or_wrong_secret_fail_verification(receiver: Receiver) -> None:
    app, signup = make_app("memory", receiver.url)
    signup.enqueue(email="a@b.c")
    app.backend.run_until_empty()
    headers, body = receiver.received[0]
    assert verify_request(headers, body, SECRET)
    assert not verify_request(headers, body.replace(b"a@b.c", b"x@b.c"), SECRET)
    assert not verify_request(headers, body, "another-secret")
    assert not verify_request({k: v for k, v in headers.items() if k != "X-Jobqueue-Signature"}, body, SECRET)
    timestamp = int(headers["X-Jobqueue-Timestamp"])
    assert not verify_signature(body, headers["X-Jobqueue-Signature"], timestamp, SECRET, now=timestamp + 301)
    stale = timestamp - 3600
    assert not verify_signature(body, sign(body, SECRET, stale), stale, SECRET)
    assert verify_signature(body, sign(body, SECRET, stale), stale, SECRET, now=stale + 10)


def test_failed_job_and_optionally_each_failed_attempt(receiver: Receiver) -> None:
    app, signup = make_app("memory", receiver.url, attempt_failed=True)
    signup.enqueue(email="bad")
    for _ in range(5):
        app.backend.run_until_empty()
        app.clock.advance(60)
    types = [e["type"] for e in receiver.events()]
    assert types == ["job.attempt_failed", "job.failed"]
    failed = receiver.events()[-1]["job"]
    assert failed["error"] == {"type": "ValueError", "message": "bad email"} and failed["attempt"] == 2


def test_job_url_then_queue_url_then_default(receiver: Receiver) -> None:
    other = Receiver()
    try:
        app, signup = make_app("memory", receiver.url, allow=[other.url])  # a job's own URL must be allowed
        signup.enqueue(email="queue@x")
        signup.enqueue(email="job@x", _webhook=other.url)
        app.backend.run_until_empty()
        assert [e["job"]["payload"]["email"] for e in receiver.events()] == ["queue@x"]
        assert [e["job"]["payload"]["email"] for e in other.events()] == ["job@x"]
        env_app = JobQueue.from_env({"JOBQUEUE_BACKEND": "memory", "JOBQUEUE_WEBHOOK_URL": other.url, "JOBQUEUE_WEBHOOK_SECRET": "s"})

        @env_app.job
        def ping(payload: Signup) -> str:
            return "pong"

        ping.enqueue(email="env@x")
        env_app.backend.run_until_empty()
        headers, body = other.received[-1]
        assert json.loads(body)["job"]["payload"]["email"] == "env@x" and verify_request(headers, body, "s")
    finally:
        other.close()


def test_no_url_means_no_delivery_job() -> None:
    app = JobQueue(backend="memory")

    @app.job
    def quiet(payload: Signup) -> None:
        return None

    quiet.enqueue(email="a")
    app.backend.run_until_empty()
    assert app.stats(WEBHOOK_QUEUE).counts == {state: 0 for state in JobState}


def test_no_event_is_built_for_a_job_whose_events_go_nowhere(receiver: Receiver) -> None:
    app, signup = make_app("memory", receiver.url, allow=[receiver.url])
    app.queue("quiet")
    built: list[str] = []
    app.hooks.add("job_completed", lambda event: built.append(event.job_id), applies=lambda env: env.queue == "signups")

    @app.job(queue="quiet")
    def hush(payload: Signup) -> None:
        return None

    quiet = Envelope(id="q", name="hush", queue="quiet")
    assert not app.webhooks.applies_to(quiet) and not app.hooks.wants("job_completed", quiet)
    assert app.hooks.wants("job_completed")  # some job's events are wanted
    assert app.webhooks.applies_to(quiet.model_copy(update={"webhook": receiver.url}))
    assert not app.webhooks.applies_to(Envelope(id="w", name="jobqueue.webhook", queue=WEBHOOK_QUEUE))

    loud, silent, own = signup.enqueue(email="a"), hush.enqueue(email="b"), hush.enqueue(email="c", _webhook=receiver.url)
    app.backend.run_until_empty()
    assert silent.id not in built and set(built) == {loud.id, own.id}  # a filtered hook gets every event that is built
    assert sorted(e["job"]["id"] for e in receiver.events()) == sorted([loud.id, own.id])


def test_receiver_down_does_not_fail_the_job_and_delivery_retries_with_backoff() -> None:
    app, signup = make_app("memory", closed_port_url())
    handle = signup.enqueue(email="a@b.c")
    app.backend.run_until_empty()
    assert handle.status().state is JobState.COMPLETED
    delivery = app.list_jobs(WEBHOOK_QUEUE, "delayed").jobs
    assert len(delivery) == 1 and delivery[0].error.type == "DeliveryFailed" and "could not be reached" in delivery[0].error.message
    assert delivery[0].not_before > app.clock.now()  # waits its backoff
    for _ in range(12):
        app.clock.advance(3600)
        app.backend.run_until_empty()
    spent = app.get(delivery[0].id)
    assert spent.state is JobState.FAILED and spent.attempt == 8
    assert handle.status().state is JobState.COMPLETED


def test_a_4xx_answer_is_not_retried(receiver: Receiver) -> None:
    receiver.status = 410
    app, signup = make_app("memory", receiver.url)
    signup.enqueue(email="a@b.c")
    app.backend.run_until_empty()
    failed = app.list_jobs(WEBHOOK_QUEUE, "failed").jobs
    assert len(failed) == 1 and failed[0].attempt == 1 and failed[0].error.type == "DeliveryRejected"


def test_sync_backend_delivers_from_the_background(receiver: Receiver) -> None:
    app, signup = make_app("sync", receiver.url)
    handle = signup.enqueue(email="a@b.c")
    assert handle.status().state is JobState.COMPLETED
    assert receiver.arrived.wait(10) and app.webhooks.flush(10)
    headers, body = receiver.received[0]
    assert verify_request(headers, body, SECRET) and json.loads(body)["job"]["id"] == handle.id


def test_a_hanging_receiver_does_not_slow_the_job_on_sync() -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts connections into the backlog, never answers
    try:
        app, signup = make_app("sync", f"http://127.0.0.1:{hang.getsockname()[1]}/slow")
        app.webhooks.timeout = 1.0
        started = time.monotonic()
        handle = signup.enqueue(email="a@b.c")
        assert time.monotonic() - started < 0.5
        assert handle.status().state is JobState.COMPLETED
    finally:
        hang.close()
    # the delivery retries in the background; let it end (a refused connection is quick) before the next test
    assert app.webhooks.flush(30)


def test_the_internal_queue_is_declared_only_when_webhooks_are_in_use() -> None:
    plain = JobQueue(backend="memory")
    plain.queue("work")
    assert list(plain.queues) == ["work"] and "jobqueue.webhook" in plain.registry
    assert WEBHOOK_QUEUE in JobQueue.from_env({"JOBQUEUE_WEBHOOK_URL": "http://127.0.0.1:9/x"}).queues
    by_queue = JobQueue(backend="memory")
    by_queue.queue("work", webhook="http://127.0.0.1:9/x")
    assert set(by_queue.queues) == {WEBHOOK_QUEUE, "work"}
    by_hand = JobQueue(backend="memory")
    by_hand.webhooks.enable()
    by_hand.webhooks.enable()
    assert list(by_hand.queues) == [WEBHOOK_QUEUE]
