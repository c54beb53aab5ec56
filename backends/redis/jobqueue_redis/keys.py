"""Key names. Every key of a queue starts with ``<prefix>:{<queue>}:`` so they share one hash slot."""

from __future__ import annotations


class QueueKeys:
    """The keys of one queue; the Lua scripts derive the rest from :attr:`base`."""

    def __init__(self, prefix: str, queue: str) -> None:
        self.queue = queue
        self.base = f"{prefix}:{{{queue}}}:"

    def job(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}"

    def set(self, name: str) -> str:
        """``waiting``, ``delayed``, ``active``, ``completed``, ``failed``, ``cancelled``, ``signal``, ``paused``."""
        return self.base + name

    @property
    def signal(self) -> str:
        return self.base + "signal"
