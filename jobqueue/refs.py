"""References from one job to another: a job by queue and id, a group by id and its home queue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class JobRef(BaseModel):
    """A job, named by its queue and id (ids are unique per queue)."""

    model_config = ConfigDict(frozen=True)

    queue: str = Field(min_length=1)
    id: str = Field(min_length=1, max_length=512)

    def __str__(self) -> str:
        return f"{self.queue}/{self.id}"


class GroupRef(BaseModel):
    """A group of jobs: its id, and ``home``, the queue whose store keeps the group's record and tally.

    On Redis Cluster every key of a queue shares one slot, so the group's record lives with its home
    queue (the callback's queue) and members in other queues reach it by a separate, idempotent step.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=400)
    home: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.home}/{self.id}"
