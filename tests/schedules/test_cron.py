"""Cron parsing, fire times across time zones and daylight-saving changes, and the EventBridge translation table."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from jobqueue.schedules.cron import CronError, CronExpr, fire_job_id
from jobqueue.schedules.eventbridge import EventBridgeCronError, to_eventbridge_cron


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def iso(values: list[datetime]) -> list[str]:
    return [v.strftime("%Y-%m-%dT%H:%MZ") for v in values]


# -- the translation table ---------------------------------------------------------------------------

TRANSLATIONS = [
    ("* * * * *", "cron(* * * * ? *)"),
    ("0 2 * * *", "cron(0 2 * * ? *)"),
    ("*/15 * * * *", "cron(0/15 * * * ? *)"),
    ("5/20 * * * *", "cron(5/20 * * * ? *)"),
    ("0 */6 * * *", "cron(0 0/6 * * ? *)"),
    ("0 1-3,5 * * *", "cron(0 1-3,5 * * ? *)"),
    ("0 9-17 * * 1-5", "cron(0 9-17 ? * 2-6 *)"),
    ("0 9 * * MON-FRI", "cron(0 9 ? * 2-6 *)"),
    ("0 0 * * 0", "cron(0 0 ? * 1 *)"),  # Unix Sunday 0 -> EventBridge SUN 1
    ("0 0 * * 7", "cron(0 0 ? * 1 *)"),  # Unix Sunday 7 too
    ("0 0 * * 6", "cron(0 0 ? * 7 *)"),  # Saturday
    ("0 0 * * sun,sat", "cron(0 0 ? * 1,7 *)"),
    ("0 0 * * 5-7", "cron(0 0 ? * 1,6,7 *)"),  # FRI-SUN wraps the week on EventBridge
    ("0 0 1 * *", "cron(0 0 1 * ? *)"),
    ("0 0 1,15 * *", "cron(0 0 1,15 * ? *)"),
    ("5,10 0 1 JAN,JUL *", "cron(5,10 0 1 1,7 ? *)"),
    ("0 0 L * *", "cron(0 0 L * ? *)"),
    ("0 0 LW * *", "cron(0 0 LW * ? *)"),
    ("0 0 * * 5L", "cron(0 0 ? * 6L *)"),  # last Friday
    ("0 0 * * MON#2", "cron(0 0 ? * 2#2 *)"),  # second Monday
    ("0 0 1-31 * 1", "cron(0 0 * * ? *)"),  # every day-of-month OR Mondays = every day
    ("@hourly", "cron(0 * * * ? *)"),
    ("@daily", "cron(0 0 * * ? *)"),
    ("@midnight", "cron(0 0 * * ? *)"),
    ("@weekly", "cron(0 0 ? * 1 *)"),
    ("@monthly", "cron(0 0 1 * ? *)"),
    ("@yearly", "cron(0 0 1 1 ? *)"),
    ("@annually", "cron(0 0 1 1 ? *)"),
    ("  0   2 * *   * ", "cron(0 2 * * ? *)"),
]


@pytest.mark.parametrize(("unix", "eventbridge"), TRANSLATIONS)
def test_translation_table(unix: str, eventbridge: str) -> None:
    assert to_eventbridge_cron(unix) == eventbridge


@pytest.mark.parametrize(
    ("unix", "message"),
    [
        ("0 0 1 * 1", "restricts both day-of-month and day-of-week (Unix cron fires on either)"),
        ("0 0 */2 * 1", "restricts both day-of-month and day-of-week (Unix cron fires on both)"),
        ("0 0 L,15 * *", "cannot list 'L' or 'LW' with other days"),
        ("0 0 * * 5L,1", "one 'nL' or 'n#k' day of the week, alone"),
    ],
)
def test_what_eventbridge_cannot_express_is_an_error(unix: str, message: str) -> None:
    with pytest.raises(EventBridgeCronError, match=re.escape(message)):
        to_eventbridge_cron(unix)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "must have 5 fields"),
        ("0 * * * * *", "must have 5 fields"),  # cronsim's seconds field is not Unix cron
        ("61 * * * *", "Bad minute"),
        ("@reboot", "not supported"),
        ("0 25 * * *", "Bad hour"),
    ],
)
def test_bad_cron_is_a_clear_error(cron: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronExpr(cron)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="unknown time zone 'Mars/Olympus'"):
        CronExpr("0 * * * *", "Mars/Olympus")


# -- fire times in time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "tz", "after", "expected"),
    [
        ("0 2 * * *", None, utc(2026, 1, 1), ["2026-01-01T02:00Z", "2026-01-02T02:00Z"]),
        ("0 2 * * *", "Europe/Berlin", utc(2026, 1, 1), ["2026-01-01T01:00Z", "2026-01-02T01:00Z"]),  # CET = UTC+1
        ("0 2 * * *", "Europe/Berlin", utc(2026, 6, 30, 12), ["2026-07-01T00:00Z", "2026-07-02T00:00Z"]),  # CEST = UTC+2
        ("0 9 * * *", "America/New_York", utc(2026, 1, 1), ["2026-01-01T14:00Z", "2026-01-02T14:00Z"]),
        ("30 0 * * *", "Asia/Kolkata", utc(2026, 1, 1), ["2026-01-01T19:00Z", "2026-01-02T19:00Z"]),  # UTC+5:30
        ("0 0 * * 1", "Australia/Sydney", utc(2026, 1, 1), ["2026-01-04T13:00Z", "2026-01-11T13:00Z"]),
    ],
)
def test_fire_times_in_time_zones(cron: str, tz: str | None, after: datetime, expected: list[str]) -> None:
    assert iso(list(CronExpr(cron, tz).fires(after, utc(2100, 1, 1), limit=2))) == expected


# -- daylight saving: EventBridge's rules ------------------------------------------------------------------
# Europe/Berlin 2026: spring forward 29 March 02:00 CET -> 03:00 CEST (01:00Z);
#                     fall back 25 October 03:00 CEST -> 02:00 CET (01:00Z): 02:00-02:59 happens twice.
# America/New_York 2026: spring forward 8 March 02:00 EST -> 03:00 EDT (07:00Z);
#                        fall back 1 November 02:00 EDT -> 01:00 EST (06:00Z): 01:00-01:59 happens twice.

DST_CASES = [
    # a daily time that does not exist that day is skipped
    ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), utc(2026, 3, 31),
     ["2026-03-28T01:30Z", "2026-03-30T00:30Z"]),
    # a daily time that happens twice fires once, at its first occurrence (CEST)
    ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 23, 12), utc(2026, 10, 27),
     ["2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z"]),
    # every 30 minutes across spring forward: 02:00 and 02:30 local do not exist
    ("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 45), utc(2026, 3, 29, 1, 30),
     ["2026-03-29T00:00Z", "2026-03-29T00:30Z", "2026-03-29T01:00Z", "2026-03-29T01:30Z"]),
    # every 30 minutes across fall back: the repeated 02:00 and 02:30 fire once (first pass), not again
    ("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 30),
     ["2026-10-25T00:00Z", "2026-10-25T00:30Z", "2026-10-25T02:00Z", "2026-10-25T02:30Z"]),
    # hourly in New York: 02:00 is skipped in March, 01:00 fires once in November
    ("0 * * * *", "America/New_York", utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 8),
     ["2026-03-08T06:00Z", "2026-03-08T07:00Z", "2026-03-08T08:00Z"]),
    ("0 * * * *", "America/New_York", utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 8),
     ["2026-11-01T04:00Z", "2026-11-01T05:00Z", "2026-11-01T07:00Z", "2026-11-01T08:00Z"]),
    # UTC has no transitions: every hour fires
    ("0 * * * *", None, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 3),
     ["2026-03-29T01:00Z", "2026-03-29T02:00Z", "2026-03-29T03:00Z"]),
]


@pytest.mark.parametrize(("cron", "tz", "after", "until", "expected"), DST_CASES)
def test_daylight_saving_transitions(cron: str, tz: str | None, after: datetime, until: datetime, expected: list[str]) -> None:
    assert iso(list(CronExpr(cron, tz).fires(after, until))) == expected


def test_starting_inside_the_repeated_hour_does_not_fire_its_times_again() -> None:
    expr = CronExpr("*/30 * * * *", "Europe/Berlin")
    # 01:10Z is 02:10 CET, the second pass of 02:00-02:59: 02:30 already fired at 00:30Z
    assert expr.next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 2)  # 03:00 CET
    assert expr.last_at_or_before(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 0, 30)


def test_last_at_or_before_includes_the_bound() -> None:
    expr = CronExpr("0 * * * *")
    assert expr.last_at_or_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 5)
    assert expr.last_at_or_before(utc(2026, 1, 1, 5, 59)) == utc(2026, 1, 1, 5)
    assert expr.next_after(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 6)


def test_deterministic_job_id_matches_eventbridge_scheduled_time_format() -> None:
    assert fire_job_id("hourly-sync", utc(2026, 3, 22, 18)) == "hourly-sync:2026-03-22T18:00:00Z"
    assert fire_job_id("sync:org-1", utc(2026, 3, 22, 18).timestamp()) == "sync:org-1:2026-03-22T18:00:00Z"


def test_import_jobqueue_does_not_import_the_cron_library() -> None:
    import subprocess
    import sys

    code = "import sys, jobqueue, jobqueue.schedules; print('cronsim' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
