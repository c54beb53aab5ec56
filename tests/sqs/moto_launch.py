"""``python -m tests.sqs.moto_launch -H host -p port`` (from the repository): moto's server, with DynamoDB's writes made atomic.

moto's TransactWriteItems copies the table first and, when the transaction is cancelled, puts that copy
back: whatever other requests wrote meanwhile is lost (DynamoDB never does that). The server answers
requests on threads, so a test that enqueues with one idempotency key from several threads saw the
winning job's item vanish. Writes here take one lock, so a transaction and its rollback are atomic.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITES = threading.RLock()


def _atomic(name: str) -> None:
    original = getattr(DynamoDBBackend, name)

    def write(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return original(self, *args, **kwargs)

    setattr(DynamoDBBackend, name, write)


for _name in ("transact_write_items", "put_item", "update_item", "delete_item"):
    _atomic(_name)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
