"""The partial batch response (jobqueue_sqs.batch): each record on its own, failures reported by message id."""

from __future__ import annotations

from typing import Any

import pytest

from jobqueue_sqs.batch import SQSRecord, process_partial_response
from tests.sqs.events import sample_record


def records(*bodies: str) -> dict[str, Any]:
    return {"Records": [dict(sample_record(), messageId=f"m{i}", body=body) for i, body in enumerate(bodies)]}


def test_failed_records_are_reported_and_the_others_are_not() -> None:
    seen: list[str] = []
    errors: list[tuple[str, str]] = []

    def handle(record: SQSRecord) -> None:
        seen.append(record.body)
        if record.body.startswith("bad"):
            raise RuntimeError(record.body)

    answer = process_partial_response(records("ok", "bad one", "ok too", "bad two"), handle,
                                      lambda record, exc: errors.append((record.message_id, str(exc))))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert seen == ["ok", "bad one", "ok too", "bad two"]  # a failure does not stop the batch
    assert errors == [("m1", "bad one"), ("m3", "bad two")]


def test_every_record_failing_is_still_a_partial_response() -> None:
    def handle(record: SQSRecord) -> None:
        raise ValueError("no")

    answer = process_partial_response(records("a", "b"), handle, lambda record, exc: None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_record_fields_read_as_powertools_names_them() -> None:
    raw = sample_record()
    record = SQSRecord(raw)
    assert (record.message_id, record.body, record.receipt_handle) == (raw["messageId"], raw["body"], raw["receiptHandle"])
    assert record.event_source_arn == "arn:aws:sqs:us-east-1:123456789012:MyQueue" and record.message_attributes == {}


@pytest.mark.parametrize("event", [{"Records": "nope"}, {"Records": [{"body": "no id"}]}, {"Records": [None]}])
def test_an_event_that_is_no_sqs_batch_fails_as_a_whole(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an SQS event"):
        process_partial_response(event, lambda record: None, lambda record, exc: None)


def test_no_records_no_failures() -> None:
    assert process_partial_response({}, lambda record: None, lambda record, exc: None) == {"batchItemFailures": []}
