"""``python -m tests.sqs.moto_launch_sized -H host -p port``: ``moto_launch``'s server, with moto's SQS made to cost
what SQS costs per request instead of a pass over every message in the queue. Only the size case uses it
(``make test-group-size``): everything else runs on moto as it is.

What moto 5.x does on a standard queue of n messages, and what this changes (nothing else is touched):

- ``Queue.attributes`` builds every name in ``Queue.BASE_ATTRIBUTES``, including the three approximate counts,
  each a pass over all n messages (with two clock reads per message). ``send_message`` reads it for one static
  attribute (``ContentBasedDeduplication``) once per message sent, and ``is_message_valid_based_on_retention_period``
  reads it three times per message received (for ``MessageRetentionPeriod``). Here the counts are taken out of
  ``BASE_ATTRIBUTES``, so ``attributes`` builds only the static ones, and ``get_queue_attributes`` (GetQueueAttributes,
  the only reader of the counts) adds them from moto's same properties when they are asked for, or ``All``: it
  answers exactly as before. The static values the other callers read are unchanged.
- ``Queue.messages`` (the visible, undelayed messages) is a list built over all n messages on every
  ReceiveMessage, which then takes the first ten. Here it is a sequence that tests visibility as it is iterated,
  so a receive looks at messages only until it has its batch. Same messages in the same order: moto takes the
  first visible ones in the order they were sent; only *when* each one's visibility is read moves, by the
  microseconds of the loop.
- ``Queue.delete_message`` tests every message for the receipt handle, then rebuilds the list testing every
  message again. Here it stops at the message that had the handle (a handle names one message: moto makes each
  one a fresh uuid) and removes it by position. Deleting a handle already deleted, or unknown, answers as before.

What a test observes of SQS (which messages a receive returns, visibility timeouts, delays, receive counts, the
redrive to the DLQ, GetQueueAttributes' counts) is moto's own code, unchanged.

One change is not SQS's: the server finds the service of each request among ``list_of_moto_modules()``, which
lists moto's package directory and stats every entry, twice a request. The directory does not change while the
server runs, so the list is read once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from moto import backends
from moto.core.utils import camelcase_to_underscores
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend

from tests.sqs import moto_launch

#: the attributes that count the queue's messages: computed only when GetQueueAttributes asks for them
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible")

_original_get_queue_attributes = SQSBackend.get_queue_attributes


def get_queue_attributes(self: SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    """moto's GetQueueAttributes for the other names, and the counts (moto's own properties) when asked or ``All``."""
    queue = self.get_queue(queue_name)
    answer = _original_get_queue_attributes(self, queue_name, [name for name in attribute_names if name not in COUNTS])
    for name in COUNTS:
        if "All" in attribute_names or name in attribute_names:
            answer[name] = getattr(queue, camelcase_to_underscores(name))
    return answer


class VisibleMessages:
    """``Queue.messages`` as a sequence that tests each message's visibility as it is iterated."""

    def __init__(self, queue: Queue) -> None:
        # deletes rebind the queue's list (see delete_message), so an iteration never sees an item vanish; a message sent
        # meanwhile is appended and may be seen, as it may on SQS
        self._messages = queue._messages

    def __iter__(self) -> Iterator[Message]:
        return (message for message in self._messages if message.visible and not message.delayed)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


def visible_messages(self: Queue) -> VisibleMessages:
    return VisibleMessages(self)


def delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``, stopping at the one message that had ``receipt_handle``."""
    if receipt_handle in self.deleted_messages:
        return
    for position, message in enumerate(self._messages):
        if message.had_receipt_handle(receipt_handle):
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
            self._messages = self._messages[:position] + self._messages[position + 1:]
            return
    raise ReceiptHandleIsInvalid()


def patch_moto() -> None:
    """Apply the changes above to moto's SQS model and its server's routing (in this process)."""
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    Queue.BASE_ATTRIBUTES = [name for name in Queue.BASE_ATTRIBUTES if name not in COUNTS]  # ``attributes`` builds these
    Queue.messages = property(visible_messages)  # type: ignore[assignment,method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


if __name__ == "__main__":
    patch_moto()
    sys.exit(moto_launch.main(sys.argv[1:]))
