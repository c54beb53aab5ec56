"""SQS partial batch responses: each record of an event handled on its own, the failed ones reported by message id.

What the handler used from Powertools' ``BatchProcessor`` (SQS, ``raise_on_entire_batch_failure=False``),
without its import: Powertools' batch utilities load every event source's data classes and the parser's
pydantic models, about a hundred modules, on each cold start. The Lambda reads the answer
``{"batchItemFailures": [{"itemIdentifier": message_id}, ...]}`` (``ReportBatchItemFailures``) and deletes
the other records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class SQSRecord:
    """One record of an SQS event, read by the names Powertools' ``SQSRecord`` gives its fields."""

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    @property
    def message_id(self) -> str:
        return str(self.raw["messageId"])

    @property
    def body(self) -> str:
        return self.raw["body"]  # type: ignore[no-any-return]

    @property
    def receipt_handle(self) -> str:
        return str(self.raw["receiptHandle"])

    @property
    def event_source_arn(self) -> str:
        """The ARN of the queue the record came from, set by SQS (``arn:aws:sqs:region:account:name``)."""
        return str(self.raw["eventSourceARN"])

    @property
    def message_attributes(self) -> Mapping[str, Any]:
        return self.raw.get("messageAttributes") or {}


def process_partial_response(
    event: Mapping[str, Any],
    handle_record: Callable[[SQSRecord], object],
    on_error: Callable[[SQSRecord, Exception], None],
) -> dict[str, list[dict[str, str]]]:
    """Run ``handle_record`` on each record in order; a record whose call raises is passed to ``on_error`` and reported.

    An event whose records are not a list, or a record without a ``messageId`` (SQS always sets both), raises
    ValueError: a failure that could not be reported per record fails the whole batch, which SQS delivers again.
    """
    records = event.get("Records", [])
    if not isinstance(records, list):
        raise ValueError("not an SQS event: 'Records' is not a list")
    failures: list[dict[str, str]] = []
    for raw in records:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("messageId"), str):
            raise ValueError("not an SQS event: a record without a messageId")
        record = SQSRecord(raw)
        try:
            handle_record(record)
        except Exception as exc:
            on_error(record, exc)
            failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}
