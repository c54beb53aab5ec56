"""Dynamic schedules on AWS: EventBridge Scheduler schedules, created through its API.

``app.schedules.add("sync:org-123", cron=..., job=..., payload=...)`` on the SQS backend creates (or
updates) the schedule ``eventbridge_name("sync:org-123")`` in the schedule group named after the prefix
(the stack's ``JobqueueScheduleGroup``; made here if missing), targeting the job's queue with the job
envelope as input, sent with the role ``JOBQUEUE_SQS_SCHEDULER_ROLE_ARN`` (the stack's ``SchedulerRoleArn``
output). EventBridge fires them, so no ticker runs: this store keeps no cursors and never grants the lease.

What jobqueue made is recognised by its ``Description`` (see :func:`~jobqueue.schedules.eventbridge.describe`);
the group's code-defined schedules (deployed from template.yaml) are not listed as dynamic ones.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from jobqueue.errors import ConfigurationError
from jobqueue.schedules.eventbridge import create_schedule_request, eventbridge_name, schedule_from_eventbridge
from jobqueue.schedules.model import Schedule

if TYPE_CHECKING:
    from jobqueue_sqs.backend import SQSBackend

ROLE_VARIABLE = "JOBQUEUE_SQS_SCHEDULER_ROLE_ARN"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class EventBridgeScheduleStore:
    """A :class:`~jobqueue.schedules.store.ScheduleStore` over the EventBridge Scheduler API."""

    def __init__(self, backend: SQSBackend, *, client: Any = None, group: str | None = None, role_arn: str | None = None) -> None:
        self.backend = backend
        self._client = client
        self.group = group or backend.settings.prefix
        self._role_arn = role_arn or backend.app.settings.environ.get(ROLE_VARIABLE) or None
        self._group_checked = False

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.backend.clients._client("scheduler")
        return self._client

    @property
    def role_arn(self) -> str:
        if not self._role_arn:
            raise ConfigurationError(
                f"dynamic schedules on SQS need the role EventBridge Scheduler sends with: set {ROLE_VARIABLE} "
                "(the SchedulerRoleArn output of template.yaml)"
            )
        return self._role_arn

    # -- dynamic schedules ---------------------------------------------------------------------------

    def add(self, schedule: Schedule) -> None:
        transport = self.backend.transport
        url = transport.url(schedule.queue)
        request = create_schedule_request(
            schedule, self.backend.app, queue_arn=transport.arn(url), role_arn=self.role_arn, group_name=self.group,
            dead_letter_arn=transport.arn(transport.dlq_url(schedule.queue)),
        )
        if not self._group_checked:
            self._ensure_group()
        self._create_or_update(request)

    def _create_or_update(self, request: dict[str, Any]) -> None:
        try:
            self.client.create_schedule(**request)
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            self.client.update_schedule(**request)

    def _ensure_group(self) -> None:
        """Make the schedule group if it is missing (template.yaml deploys it; ``jobqueue sqs init`` and tests do not)."""
        try:
            self.client.get_schedule_group(Name=self.group)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            try:
                self.client.create_schedule_group(Name=self.group)
            except ClientError as again:
                if _code(again) != "ConflictException":
                    raise
        self._group_checked = True

    def remove(self, name: str) -> bool:
        if self.get(name) is None:
            return False
        try:
            self.client.delete_schedule(Name=eventbridge_name(name), GroupName=self.group)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def get(self, name: str) -> Schedule | None:
        try:
            described = self.client.get_schedule(Name=eventbridge_name(name), GroupName=self.group)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        schedule = self._parse(described)
        return schedule if schedule is not None and schedule.name == name else None

    def list(self) -> builtins.list[Schedule]:
        found: builtins.list[Schedule] = []
        names: builtins.list[str] = []
        try:
            for page in self.client.get_paginator("list_schedules").paginate(GroupName=self.group):
                names.extend(item["Name"] for item in page.get("Schedules", []))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return []
            raise
        for name in names:
            try:
                described = self.client.get_schedule(Name=name, GroupName=self.group)
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    continue  # removed meanwhile
                raise
            schedule = self._parse(described)
            if schedule is not None:
                found.append(schedule)
        return sorted(found, key=lambda s: s.name)

    @staticmethod
    def _parse(described: Any) -> Schedule | None:
        """The dynamic schedule jobqueue made, or None (another tool's schedule, or a code-defined one)."""
        try:
            schedule = schedule_from_eventbridge(described)
        except (ValueError, KeyError, TypeError):
            return None
        return schedule if schedule.source == "dynamic" else None

    # -- no ticker on AWS: EventBridge fires ------------------------------------------------------------

    def get_cursor(self, name: str) -> float | None:
        return None

    def set_cursor(self, name: str, fired_until: float) -> None:
        return None

    def acquire_leader(self, owner: str, ttl: float) -> bool:
        return False  # a ticker here would fire what EventBridge already fires

    def release_leader(self, owner: str) -> None:
        return None
