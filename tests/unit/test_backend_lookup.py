from __future__ import annotations

import subprocess
import sys

import pytest

from jobqueue import BackendNotInstalled, JobQueue, UnknownBackend
from jobqueue.backends import load_backend_class
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.sync import SyncBackend


def test_builtin_names() -> None:
    assert load_backend_class("sync") is SyncBackend
    assert load_backend_class("memory") is MemoryBackend
    assert load_backend_class("jobqueue.backends.memory:MemoryBackend") is MemoryBackend


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownBackend, match="unknown backend 'rabbit'; valid: sync, memory, redis, sqs"):
        load_backend_class("rabbit")


def test_module_class_that_is_not_a_backend() -> None:
    with pytest.raises(UnknownBackend, match="not a jobqueue Backend"):
        load_backend_class("jobqueue.app:JobQueue")
    with pytest.raises(UnknownBackend, match="cannot import module"):
        load_backend_class("no_such_module_xyz:Thing")


def test_missing_backend_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jobqueue_redis", None)  # as if the distribution were not installed
    with pytest.raises(BackendNotInstalled, match=r"pip install 'jobqueue\[redis\]'"):
        load_backend_class("redis")


def test_a_backend_instance_is_used_as_given() -> None:
    backend = MemoryBackend()
    app = JobQueue(backend=backend)
    assert app.backend is backend and backend.app is app


def test_import_jobqueue_stays_light() -> None:
    code = "import sys, jobqueue; print(sorted(m for m in ('redis', 'boto3', 'botocore', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
