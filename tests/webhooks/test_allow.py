"""Where webhooks may go (JOBQUEUE_WEBHOOK_ALLOW): a queue writer cannot make a worker POST anywhere it can reach."""

from __future__ import annotations

import time

import pytest

from jobqueue import ConfigurationError, FakeClock, JobQueue, JobState
from jobqueue.envelope import Envelope
from jobqueue.settings import Settings
from jobqueue.webhook_allow import AllowList
from jobqueue.webhooks import WEBHOOK_JOB, WEBHOOK_QUEUE
from tests.webhooks.test_webhooks import Receiver, Signup, make_app, receiver  # noqa: F401  (fixture)

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


def test_by_default_a_jobs_own_url_is_refused_at_enqueue_and_the_apps_urls_still_work(receiver: Receiver) -> None:
    app, signup = make_app("memory", receiver.url)  # the queue's URL: configured by the app, so allowed
    for url in (METADATA, "http://127.0.0.1:6379/", "https://hooks.example.com/x"):
        with pytest.raises(ConfigurationError, match="JOBQUEUE_WEBHOOK_ALLOW"):
            signup.enqueue(email="a@b.c", _webhook=url)
    assert app.stats("signups").counts[JobState.WAITING] == 0  # nothing stored
    signup.enqueue(email="a@b.c")
    app.backend.run_until_empty()
    assert [e["type"] for e in receiver.events()] == ["job.completed"]


def test_allowed_by_the_setting_read_from_the_environment(receiver: Receiver) -> None:
    prefix = receiver.url.rsplit("/", 1)[0] + "/"  # http://127.0.0.1:<port>/
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": "memory", "JOBQUEUE_WEBHOOK_ALLOW": f"https://hooks.example.com/a, {prefix}"},
                            clock=FakeClock(start=time.time()))
    app.webhooks.enable()

    @app.job
    def ping(payload: Signup) -> str:
        return "pong"

    handle = ping.enqueue(email="a@b.c", _webhook=receiver.url)
    app.backend.run_until_empty()
    assert [e["job"]["id"] for e in receiver.events()] == [handle.id]
    with pytest.raises(ConfigurationError, match="not allowed"):
        ping.enqueue(email="a@b.c", _webhook=METADATA)


def test_refused_where_it_is_sent_when_written_past_enqueue(receiver: Receiver) -> None:
    app, signup = make_app("memory", "https://hooks.example.com/signups")
    # a job whose envelope names a URL no one allowed, written to the queue directly: it runs, no event is sent
    forged = Envelope(id="forged", name="signup", queue="signups", payload={"email": "a@b.c"}, max_attempts=2, webhook=receiver.url)
    app.backend.enqueue([forged])
    # and a delivery job written directly, pointing at the receiver
    delivery = Envelope(id="forged-delivery", name=WEBHOOK_JOB, queue=WEBHOOK_QUEUE, max_attempts=8,
                        payload={"url": receiver.url, "event": {"type": "job.completed"}})
    app.backend.enqueue([delivery])
    app.backend.run_until_empty()
    assert app.get("forged").state is JobState.COMPLETED
    assert receiver.received == []
    refused = app.get("forged-delivery")
    assert refused.state is JobState.FAILED and refused.error.type == "DeliveryRejected" and refused.attempt == 1
    assert "not allowed" in refused.error.message
    assert [j.id for j in app.list_jobs(WEBHOOK_QUEUE, "failed").jobs] == ["forged-delivery"]  # no delivery made for the forged job


@pytest.mark.parametrize(("entries", "url", "allowed"), [
    ((), "https://hooks.example.com/x", False),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs", True),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs/42?sig=1", True),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs-admin", False),
    (("https://hooks.example.com/jobs/",), "https://hooks.example.com/jobs/42", True),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs/../admin", False),  # resolves outside the prefix
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs/%2e%2e/admin", False),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs/..%5cadmin", False),
    (("https://hooks.example.com/jobs",), "https://hooks.example.com/jobs/v1..2/x", True),  # dots inside a segment are a name
    (("https://hooks.example.com",), "https://hooks.example.com.evil.io/", False),
    (("https://hooks.example.com",), "https://hooks.example.com@169.254.169.254/", False),
    (("https://hooks.example.com",), "http://hooks.example.com/", False),  # scheme
    (("https://hooks.example.com",), "https://hooks.example.com:8443/", False),  # port
    (("https://hooks.example.com",), "https://HOOKS.example.com:443/x", True),
    (("hooks.example.com",), "http://hooks.example.com:8080/any", True),
    (("hooks.example.com",), "https://169.254.169.254/", False),
    (("*",), METADATA, True),
    (("*",), "file:///etc/passwd", False),
])
def test_allow_list_matching(entries: tuple[str, ...], url: str, allowed: bool) -> None:
    assert AllowList(entries).permits(url) is allowed


def test_the_setting_is_parsed_and_checked_once() -> None:
    settings = Settings.from_env({"JOBQUEUE_WEBHOOK_ALLOW": " https://a.example/x,hooks.example.com  b.example "})
    assert settings.webhook_allow == ("https://a.example/x", "hooks.example.com", "b.example")
    assert Settings.from_env({}).webhook_allow == ()
    for bad in ("ftp://a.example/", "https://a.example/?q=1", "https://user@a.example/", "not a host!"):
        with pytest.raises(ConfigurationError, match="JOBQUEUE_WEBHOOK_ALLOW"):
            Settings.from_env({"JOBQUEUE_WEBHOOK_ALLOW": bad})
