"""Job states, named as Bull/BullMQ users know them."""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    """Where a job is in its life."""

    DELAYED = "delayed"
    WAITING = "waiting"
    WAITING_CHILDREN = "waiting-children"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        """True for the states a job never leaves by itself."""
        return self in FINISHED_STATES

    def __str__(self) -> str:
        return self.value


FINISHED_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
PENDING_STATES = frozenset({JobState.DELAYED, JobState.WAITING, JobState.WAITING_CHILDREN})
