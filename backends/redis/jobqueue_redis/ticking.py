"""The schedule ticker a Redis worker runs beside its job loop (one per process; the leader lease picks who fires)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from jobqueue.errors import BrokerUnavailable

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

logger = logging.getLogger("jobqueue.redis.worker")


def start_ticker(app: JobQueue, stop: threading.Event) -> threading.Thread | None:
    """Start ``app``'s ticker in a daemon thread that runs until ``stop`` is set, then releases the lease.

    Only when there is something to fire: a schedule defined in code, or a dynamic one in Redis
    (when Redis cannot say, it starts anyway). A dynamic schedule added later, to an app that had none
    when its workers started, fires once a worker (re)starts.
    """
    try:
        wanted = bool(app.schedules.code_defined()) or bool(app.schedules.dynamic())
    except BrokerUnavailable:
        wanted = True
    if not wanted:
        logger.debug("no schedules: the worker runs no ticker")
        return None
    ticker = app.schedules.ticker()
    logger.info("schedule ticker started as %s", ticker.owner)
    return ticker.start(stop)
