"""Workflows: dependencies between jobs, groups with a callback, and the steps backends provide for them."""

from jobqueue.workflows.coordinator import Workflows
from jobqueue.workflows.group import Group, GroupHandle, GroupResults, Signature
from jobqueue.workflows.store import Followup, GroupRecord, GroupTally, JobEnd, WorkflowStore

__all__ = ["Followup", "Group", "GroupHandle", "GroupRecord", "GroupResults", "GroupTally", "JobEnd", "Signature", "WorkflowStore", "Workflows"]
