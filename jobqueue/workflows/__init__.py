"""Workflows: dependencies between jobs, groups with a callback, and the steps backends provide for them.

The names are imported on first access (PEP 562): a backend's job store needs ``workflows.store`` on every
job, the coordinator and groups only apps (and jobs) that use workflows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.lazy import lazy_exports

if TYPE_CHECKING:
    from jobqueue.workflows.coordinator import Workflows
    from jobqueue.workflows.group import Group, GroupHandle, GroupResults, Signature
    from jobqueue.workflows.store import Followup, GroupRecord, GroupTally, JobEnd, WorkflowStore

_EXPORTS: dict[str, str] = {
    "Workflows": "jobqueue.workflows.coordinator",
    **dict.fromkeys(("Group", "GroupHandle", "GroupResults", "Signature"), "jobqueue.workflows.group"),
    **dict.fromkeys(("Followup", "GroupRecord", "GroupTally", "JobEnd", "WorkflowStore"), "jobqueue.workflows.store"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["Followup", "Group", "GroupHandle", "GroupRecord", "GroupResults", "GroupTally", "JobEnd", "Signature", "WorkflowStore", "Workflows"]
