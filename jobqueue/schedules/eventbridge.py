"""Code-defined schedules as EventBridge Scheduler resources: cron translation, resource rendering, drift.

Pure Python (no boto3): ``jobqueue sam export`` renders :func:`schedule_resources` into template.yaml
and ``jobqueue sam check`` compares the template with :func:`check_resources`.

Unix cron -> EventBridge ``cron(minutes hours day-of-month month day-of-week year)``:

- the fields are read by cronsim (the same parser the local ticker uses) and rendered from the sets it
  parsed, so both sides fire on the same days by construction;
- day-of-week is renumbered: Unix 0 or 7 = Sunday .. 6 = Saturday, EventBridge 1 = SUN .. 7 = SAT;
- one of day-of-month and day-of-week must be ``?``: a cron that restricts both (Unix cron fires on
  *either*; with a field starting with ``*`` Debian cron needs *both*) cannot be expressed and is a
  :class:`EventBridgeCronError`, never a silently different schedule;
- the year field is ``*``; ``L``, ``LW``, ``5L`` and ``1#2`` map to EventBridge's ``L``, ``LW``, ``6L``, ``2#2``.

Daylight-saving changes need no translation: EventBridge evaluates the expression in
``ScheduleExpressionTimezone`` with the rules :mod:`jobqueue.schedules.cron` copies.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobqueue.errors import ConfigurationError
from jobqueue.schedules.cron import CronError, CronExpr
from jobqueue.schedules.model import TRACE_FIRE_TIME, Schedule

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
RESOURCE_TYPE = "AWS::Scheduler::Schedule"
LOGICAL_ID_PREFIX = "JobqueueSchedule"
#: MaximumEventAgeInSeconds per missed policy: how late EventBridge may still deliver a fire
MAX_EVENT_AGE = {"skip": 3600, "catch_up": 86400}
MAX_RETRY_ATTEMPTS = 185  # EventBridge Scheduler's own default
DESCRIPTION_PREFIX = "jobqueue schedule "
MAX_INPUT = 8192  # characters of a target's Input

_ALL_DAYS = frozenset(range(1, 32))
_ALL_WEEKDAYS = frozenset(range(7))
_NAME_OK = re.compile(r"[0-9A-Za-z_.\-]{1,64}")


class EventBridgeCronError(CronError):
    """A cron expression EventBridge Scheduler cannot express; the message says what to change."""


# -- cron translation ---------------------------------------------------------------------------------


def _runs(values: list[int]) -> str:
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start},{prev}" if prev == start + 1 else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)


def _render(values: Iterable[int], low: int, high: int, *, steps: bool = True) -> str:
    """A field from the set of values it matches: ``*``, ``start/step``, or a list of values and ranges."""
    ordered = sorted(set(values))
    if ordered == list(range(low, high + 1)):
        return "*"
    if steps and len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], high + 1, step)):
            return f"{ordered[0]}/{step}"
    return _runs(ordered)


def _day_of_month(days: set[int], cron: str) -> str:
    from cronsim import CronSim

    specials = {d for d in days if d in (CronSim.LAST, CronSim.LAST_WEEKDAY)}
    if specials:
        if len(days) > 1:
            raise EventBridgeCronError(f"cron {cron!r}: EventBridge cannot list 'L' or 'LW' with other days of the month")
        return "L" if CronSim.LAST in specials else "LW"
    return _render(days, 1, 31)


def _day_of_week(weekdays: set[Any], cron: str) -> str:
    from cronsim import CronSim

    specials = [d for d in weekdays if isinstance(d, tuple)]
    if specials:
        if len(weekdays) > 1:
            raise EventBridgeCronError(f"cron {cron!r}: EventBridge allows one 'nL' or 'n#k' day of the week, alone")
        day, which = specials[0]
        return f"{day % 7 + 1}L" if which == CronSim.LAST else f"{day % 7 + 1}#{which}"
    return _render({d % 7 + 1 for d in weekdays}, 1, 7, steps=False)


def to_eventbridge_cron(cron: str) -> str:
    """``"0 2 * * 1-5"`` -> ``"cron(0 2 ? * 2-6 *)"``; :class:`EventBridgeCronError` if EventBridge cannot say it."""
    expr = CronExpr(cron)
    sim = expr.sim(datetime(2000, 1, 1))
    minutes = _render(sim.minutes, 0, 59)
    hours = _render(sim.hours, 0, 23)
    months = _render(sim.months, 1, 12)
    all_days = set(sim.days) == _ALL_DAYS
    every_weekday = {d % 7 for d in sim.weekdays if isinstance(d, int)} == _ALL_WEEKDAYS
    if (all_days and every_weekday) or ((all_days or every_weekday) and not sim.day_and):
        dom, dow = "*", "?"
    elif all_days and sim.day_and:
        dom, dow = "?", _day_of_week(sim.weekdays, expr.expr)
    elif every_weekday and sim.day_and:
        dom, dow = _day_of_month(sim.days, expr.expr), "?"
    else:
        rule = "both" if sim.day_and else "either"
        raise EventBridgeCronError(
            f"cron {expr.expr!r} restricts both day-of-month and day-of-week (Unix cron fires on {rule}); "
            "EventBridge needs one of them to be '?': split it into two schedules"
        )
    return f"cron({minutes} {hours} {dom} {months} {dow} *)"


# -- names ---------------------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def eventbridge_name(name: str) -> str:
    """A schedule name EventBridge accepts (``[0-9A-Za-z_.-]``, at most 64): ``sync:org-123`` -> ``sync-org-123-<hash>``.

    Names that are already valid are kept; others get a hash of the original, so two never collide.
    """
    if _NAME_OK.fullmatch(name):
        return name
    cleaned = re.sub(r"[^0-9A-Za-z_.\-]", "-", name)[:55]
    return f"{cleaned}-{_digest(name)}"


def logical_id(name: str) -> str:
    """The CloudFormation logical id of a schedule's resource: ``JobqueueScheduleHourlySync`` (+ hash if lossy)."""
    words = re.split(r"[^0-9A-Za-z]+", name)
    camel = "".join(w[:1].upper() + w[1:] for w in words if w)
    lossless = re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", name) is not None and name.lower() == name
    return f"{LOGICAL_ID_PREFIX}{camel}" + ("" if lossless else _digest(name).upper())


def queue_logical_id(queue: str) -> str:
    """The default logical id of a queue's SQS resource: ``JobqueueQueueReports`` (the SQS export may pass its own)."""
    return "JobqueueQueue" + "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9A-Za-z]+", queue) if w)


# -- resources ------------------------------------------------------------------------------------------


def target_input(schedule: Schedule, app: JobQueue) -> str:
    """The SQS message body EventBridge sends: the job envelope, its id built from ``<aws.scheduler.scheduled-time>``.

    Deterministic (sorted keys, no enqueue time), so the drift check can compare it as text; the
    handler takes the envelope's ``enqueued_at`` of 0 as "when SQS received it".
    """
    envelope = schedule.envelope(app, 0.0)
    trace = {**envelope.trace, TRACE_FIRE_TIME: SCHEDULED_TIME}
    placed = envelope.model_copy(update={"id": f"{schedule.name}:{SCHEDULED_TIME}", "trace": trace, "enqueued_at": 0.0})
    return json.dumps(placed.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def schedule_resource(
    schedule: Schedule,
    app: JobQueue,
    *,
    queue_arn: Any = None,
    role_arn: Any = None,
    dead_letter_arn: Any = None,
    group_name: str | None = None,
) -> dict[str, Any]:
    """One ``AWS::Scheduler::Schedule`` resource (a dict ready for YAML) for a code-defined schedule.

    ``queue_arn``/``role_arn`` are any CloudFormation values; by default ``Fn::GetAtt`` of the queue's
    :func:`queue_logical_id` and of ``JobqueueSchedulerRole``.
    """
    body = target_input(schedule, app)
    if len(body) > MAX_INPUT:
        raise ConfigurationError(
            f"schedule {schedule.name!r}: its job envelope is {len(body)} characters; EventBridge Scheduler takes at most "
            f"{MAX_INPUT} as a target's input: make the payload smaller (pass an id, not the data)"
        )
    target: dict[str, Any] = {
        "Arn": queue_arn if queue_arn is not None else {"Fn::GetAtt": [queue_logical_id(schedule.queue), "Arn"]},
        "RoleArn": role_arn if role_arn is not None else {"Fn::GetAtt": ["JobqueueSchedulerRole", "Arn"]},
        "Input": body,
        "RetryPolicy": {"MaximumEventAgeInSeconds": MAX_EVENT_AGE[schedule.missed], "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS},
    }
    if dead_letter_arn is not None:
        target["DeadLetterConfig"] = {"Arn": dead_letter_arn}
    properties: dict[str, Any] = {
        "Name": eventbridge_name(schedule.name),
        "Description": describe(schedule),
        "ScheduleExpression": to_eventbridge_cron(schedule.cron),
        "ScheduleExpressionTimezone": schedule.tz or "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": target,
    }
    if group_name is not None:
        properties["GroupName"] = group_name
    return {"Type": RESOURCE_TYPE, "Properties": properties}


def describe(schedule: Schedule) -> str:
    """The schedule's ``Description``: what the EventBridge form loses (the name, the Unix cron, the policy), as JSON."""
    fields = {"name": schedule.name, "cron": schedule.cron, "tz": schedule.tz, "missed": schedule.missed, "source": schedule.source}
    return DESCRIPTION_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":"))


def create_schedule_request(
    schedule: Schedule, app: JobQueue, *, queue_arn: str, role_arn: str, group_name: str | None = None, dead_letter_arn: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of EventBridge Scheduler's ``CreateSchedule`` / ``UpdateSchedule`` for a dynamic schedule.

    The same properties as the template's resource (the API and CloudFormation share their names), with real ARNs.
    """
    resource = schedule_resource(schedule, app, queue_arn=queue_arn, role_arn=role_arn, dead_letter_arn=dead_letter_arn, group_name=group_name)
    properties: dict[str, Any] = resource["Properties"]
    return properties


def schedule_from_eventbridge(described: Mapping[str, Any]) -> Schedule:
    """A :class:`Schedule` back from a ``GetSchedule`` answer (or a resource's properties) that jobqueue made.

    :class:`ValueError` if the schedule was not made by jobqueue.
    """
    description = described.get("Description") or ""
    if not description.startswith(DESCRIPTION_PREFIX):
        raise ValueError(f"schedule {described.get('Name')!r} was not made by jobqueue (its Description is not jobqueue's)")
    fields = json.loads(description[len(DESCRIPTION_PREFIX):])
    envelope = json.loads(described["Target"]["Input"])
    return Schedule(job=envelope["name"], queue=envelope["queue"], payload=envelope.get("payload") or {}, **fields)


def schedule_resources(app: JobQueue, **options: Any) -> dict[str, dict[str, Any]]:
    """Every code-defined schedule of ``app`` as ``{logical id: resource}`` (options: see :func:`schedule_resource`)."""
    return {logical_id(s.name): schedule_resource(s, app, **options) for s in app.schedules.code_defined()}


#: the properties the drift check compares (references such as ``!GetAtt`` are the template's business)
COMPARED = ("Name", "ScheduleExpression", "ScheduleExpressionTimezone", "State", "FlexibleTimeWindow")


def check_resources(app: JobQueue, resources: Mapping[str, Any]) -> list[str]:
    """Differences between ``app``'s code-defined schedules and a template's ``Resources``; [] when they agree."""
    expected = schedule_resources(app)
    problems: list[str] = []
    for lid, want in expected.items():
        have = resources.get(lid)
        if not isinstance(have, Mapping) or have.get("Type") != RESOURCE_TYPE:
            problems.append(f"{lid}: schedule {want['Properties']['Name']!r} is in the code but not in the template")
            continue
        have_props = have.get("Properties") or {}
        for key in COMPARED:
            if have_props.get(key) != want["Properties"][key]:
                problems.append(f"{lid}: {key} is {have_props.get(key)!r} in the template, {want['Properties'][key]!r} in the code")
        have_input = (have_props.get("Target") or {}).get("Input")
        if _json_or_text(have_input) != _json_or_text(want["Properties"]["Target"]["Input"]):
            problems.append(f"{lid}: Target.Input (the job envelope) differs from the code's")
    for lid, have in resources.items():
        if lid.startswith(LOGICAL_ID_PREFIX) and lid not in expected and isinstance(have, Mapping) and have.get("Type") == RESOURCE_TYPE:
            problems.append(f"{lid}: schedule is in the template but no longer in the code")
    return problems


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
