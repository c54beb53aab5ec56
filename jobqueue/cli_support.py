"""Finding the user's app from ``module:attr`` (``--app`` or ``JOBQUEUE_APP``)."""

from __future__ import annotations

import importlib
import os
import sys

from jobqueue.app import JobQueue
from jobqueue.errors import ConfigurationError


def load_app(spec: str | None) -> JobQueue:
    """The :class:`JobQueue` named by ``spec`` (``package.module:attr``); without one, ``JobQueue.from_env()``.

    Only the module the operator names is imported: nothing a message says is ever imported.
    """
    spec = spec or os.environ.get("JOBQUEUE_APP") or None
    if not spec:
        return JobQueue.from_env()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"app {spec!r} must be 'module:attribute', e.g. 'myapp.jobs:app'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"app {spec!r}: cannot import module {exc.name!r}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, JobQueue):
        raise ConfigurationError(f"app {spec!r}: {module_name}.{attr} is not a jobqueue.JobQueue (got {type(app).__name__})")
    return app
