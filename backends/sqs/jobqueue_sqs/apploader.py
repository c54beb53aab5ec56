"""Finding the app from ``module:attr``: the core's loader when it has one, else this small one."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from jobqueue.errors import ConfigurationError

if TYPE_CHECKING:
    from jobqueue.app import JobQueue


def load_app(spec: str | None) -> JobQueue:
    """The :class:`JobQueue` named by ``spec`` or ``JOBQUEUE_APP``; nothing a message says is imported."""
    try:
        from jobqueue.cli_support import load_app as core_load_app  # type: ignore[import-not-found]
    except ImportError:
        core_load_app = None
    if core_load_app is not None:
        return core_load_app(spec)  # type: ignore[no-any-return]
    from jobqueue.app import JobQueue

    spec = spec or os.environ.get("JOBQUEUE_APP") or None
    if not spec:
        return JobQueue.from_env()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"app {spec!r} must be 'module:attribute', e.g. 'myapp.jobs:app'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"app {spec!r}: cannot import module {exc.name!r}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, JobQueue):
        raise ConfigurationError(f"app {spec!r}: {module_name}.{attr} is not a jobqueue.JobQueue (got {type(app).__name__})")
    return app
