"""Recurring schedules: defined once in code (Unix cron, a time zone), fired locally by a ticker
inside the worker, deployed on AWS as EventBridge Scheduler resources.

Importing this package does not import the cron library; it is loaded when a cron is first parsed.

For backend authors:

- Dynamic schedules, cursors and the lease: override ``Backend.schedule_store()`` to return a
  :class:`ScheduleStore` (``add``, ``remove``, ``get``, ``list``, ``get_cursor``, ``set_cursor``,
  ``acquire_leader``, ``release_leader``); store schedules as ``Schedule.model_dump_json()`` and read them
  with ``Schedule.model_validate_json()``. ``tests/schedules/test_store_contract.py`` checks a store: add
  a ``tests/schedules/stores_<name>.py`` with a ``STORES`` dict.
- The worker's ticker: ``ticker = app.schedules.ticker()`` then ``ticker.start(stop_event)`` (a daemon
  thread) or ``await ticker.arun(stop_event)`` beside the job loop; ``ticker.close()`` hands the lease over.
- AWS: :mod:`jobqueue.schedules.eventbridge` renders template resources (``schedule_resources``), checks a
  template (``check_resources``), and builds ``CreateSchedule`` requests for dynamic schedules
  (``create_schedule_request``, ``schedule_from_eventbridge``).
"""

from jobqueue.schedules.cron import CronError, CronExpr, fire_job_id, format_fire_time
from jobqueue.schedules.model import MissedPolicy, Schedule
from jobqueue.schedules.registry import Schedules
from jobqueue.schedules.store import InMemoryScheduleStore, ScheduleStore
from jobqueue.schedules.ticker import Fired, Ticker

__all__ = [
    "CronError", "CronExpr", "Fired", "InMemoryScheduleStore", "MissedPolicy", "Schedule", "ScheduleStore",
    "Schedules", "Ticker", "fire_job_id", "format_fire_time",
]
