"""The Lambda handler under fire: arbitrary bodies, message attributes, receive counts and time left.

Whatever arrives, the handler answers with a partial batch response and never raises past it; a record
it reports done (leaves out of ``batchItemFailures``, so SQS deletes it) completed, was skipped (its job
already finished, or its row was cleaned), hopped (sent again with a delay) or was copied to the DLQ; a
body that is no job envelope goes to the DLQ at once. In-process moto keeps each example to milliseconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobqueue import JobQueue, JobState
from jobqueue.envelope import decode_envelope
from jobqueue.errors import UnsupportedEnvelope
from jobqueue_sqs.transport import ATTR_STORED
from tests.sqs import jobs_app
from tests.sqs.events import Context
from tests.sqs.inprocess import drain_dlq, inprocess_sqs_app, send_and_receive

QUEUE = jobs_app.QUEUE

# what an SQS message body may hold (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html)
sqs_char = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff") | st.sampled_from("\t\n\r")
sqs_text = st.text(sqs_char, max_size=80)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | sqs_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(sqs_char, max_size=8), inner, max_size=4),
    max_leaves=12,
)
job_id = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)
payload = st.one_of(st.builds(lambda v: {"value": v}, json_value), st.builds(lambda n: {"succeed_on": n}, st.integers(-2, 4)),
                    st.dictionaries(st.text(sqs_char, max_size=8), json_value, max_size=3))
envelope = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2]),
        "id": job_id,
        "name": st.sampled_from(["ok", "ok", "boom", "flaky", "big"]) | st.sampled_from(["os:system", "subprocess.run", "builtins.eval"]) | sqs_text,
        "queue": st.sampled_from([QUEUE, QUEUE, "other"]) | sqs_text,
        "payload": payload,
        "attempt": st.integers(-1, 6),
        "max_attempts": st.integers(0, 6),
    },
    optional={
        "not_before_in": st.sampled_from([-1000.0, 3.0, 5000.0]),
        "timeout": st.floats(-1, 120, allow_nan=False),
        "priority": st.integers(-3, 12),
        "depends_on": st.lists(job_id, max_size=2),
        "idempotency_key": sqs_text,
        "trace": st.dictionaries(sqs_text, sqs_text, max_size=2) | json_value,
    },
)


def envelope_body(fields: dict[str, Any], tag: str) -> str:
    made = dict(fields, id=f"{fields['id']}-{tag}")  # ids of one example never meet another example's rows
    offset = made.pop("not_before_in", None)
    if offset is not None:
        made["not_before"] = time.time() + offset
    return json.dumps(made)


body = st.one_of(
    sqs_text,
    json_value.map(json.dumps),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.tuples(envelope, st.sampled_from(["", "", "", "garbage"])).map(lambda pair: ("ENVELOPE", pair[0], pair[1])),
)
attribute_name = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True).filter(lambda n: not n.lower().startswith(("aws", "amazon")) and n != "fuzz-tag")
attributes = st.dictionaries(attribute_name, st.text(sqs_char, min_size=1, max_size=30).filter(str.strip), max_size=3) | st.just({ATTR_STORED: "1"})
receive_count = st.integers(1, 10**6).map(str) | sqs_text
record_spec = st.tuples(body, attributes, receive_count)


@pytest.fixture(scope="module")
def app() -> Iterator[JobQueue]:
    with inprocess_sqs_app() as made:
        yield made


def resolve(spec: Any, tag: str) -> str:
    if isinstance(spec, tuple):
        _, fields, suffix = spec
        return envelope_body(fields, tag) + suffix
    return spec  # type: ignore[no-any-return]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(records=st.lists(record_spec, min_size=1, max_size=5), remaining=st.sampled_from([60_000, 60_000, 60_000, 4_000, 50]))
def test_handler_never_raises_and_reports_done_only_what_is_done(app: JobQueue, records: list[Any], remaining: int) -> None:
    tag = uuid.uuid4().hex[:10]
    bodies = [(resolve(spec, tag), attrs) for spec, attrs, _ in records]
    event = send_and_receive(app, QUEUE, bodies, tag)
    for item, (_, _, count) in zip(event["Records"], records):
        item["attributes"]["ApproximateReceiveCount"] = count
    backend = app.backend
    hops: list[tuple[str, str]] = []
    original_resend = backend.transport.resend  # type: ignore[attr-defined]

    def resend(queue: str, body: str, *args: Any, **kwargs: Any) -> None:
        original_resend(queue, body, *args, **kwargs)
        hops.append((queue, body))

    backend.transport.resend = resend  # type: ignore[attr-defined]
    try:
        response = backend.worker.handle(event, Context(remaining))  # type: ignore[attr-defined]  # must not raise
    finally:
        del backend.transport.resend  # type: ignore[attr-defined]

    assert set(response) == {"batchItemFailures"}
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    ids = [item["messageId"] for item in event["Records"]]
    assert len(set(failed)) == len(failed) and set(failed) <= set(ids)
    dead = {m["Body"] for name in (QUEUE, "other") for m in drain_dlq(app, name)}
    now = app.clock.now()
    for item in event["Records"]:
        if item["messageId"] in failed:
            continue
        text = item["body"]
        try:
            env = decode_envelope(text)
        except UnsupportedEnvelope:
            assert (text or "(empty body)") in dead, f"a poison body was reported done but is not in the DLQ: {text[:200]!r}"
            continue
        if env.queue != QUEUE:  # it names another queue than the one it came on: refused, to this queue's DLQ
            assert text in dead, f"a misaddressed envelope was reported done but is not in the DLQ: {text[:200]!r}"
            continue
        if (env.queue, text) in hops:
            continue
        row = backend.store.load(env.queue, env.id, now)  # type: ignore[attr-defined]
        if row is None:
            assert ATTR_STORED in item["messageAttributes"], f"reported done, but job {env.id!r} has no row"
            continue
        assert row.state in (JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED), f"reported done while {row.state.value}: {text[:300]}"
        if row.state is JobState.FAILED:
            assert text in dead or row.in_dlq, f"failed and reported done, but not copied to the DLQ: {text[:300]}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(poison=st.lists(st.one_of(sqs_text, json_value.map(json.dumps)).filter(lambda t: not _is_envelope(t)), min_size=1, max_size=5))
def test_poison_bodies_all_go_to_the_dlq_and_are_reported_done(app: JobQueue, poison: list[str]) -> None:
    tag = uuid.uuid4().hex[:10]
    event = send_and_receive(app, QUEUE, [(text, {}) for text in poison], tag)
    response = app.backend.worker.handle(event, Context(60_000))  # type: ignore[attr-defined]
    assert response == {"batchItemFailures": []}
    dead = drain_dlq(app, QUEUE)
    assert sorted(m["Body"] for m in dead) == sorted(text or "(empty body)" for text in poison)
    assert all(m["MessageAttributes"]["jobqueue-error"]["StringValue"] for m in dead)


def _is_envelope(text: str) -> bool:
    try:
        decode_envelope(text)
    except UnsupportedEnvelope:
        return False
    return True
