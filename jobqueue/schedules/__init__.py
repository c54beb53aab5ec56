"""Recurring schedules: defined once in code (Unix cron, a time zone), fired locally by a ticker
inside the worker, deployed on AWS as EventBridge Scheduler resources.

Importing this package does not import the cron library; it is loaded when a cron is first parsed.
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
