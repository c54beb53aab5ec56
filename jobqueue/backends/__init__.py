"""Finding a backend by name: a small alias table, imported lazily; entry points for the rest."""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from jobqueue.backends.base import Backend, Capability
from jobqueue.errors import BackendNotInstalled, UnknownBackend

__all__ = ["BACKENDS", "Backend", "Capability", "create_backend", "load_backend_class"]

#: name -> (import path, pip extra that installs it or None for built-ins)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "sync": ("jobqueue.backends.sync:SyncBackend", None),
    "memory": ("jobqueue.backends.memory:MemoryBackend", None),
    "redis": ("jobqueue_redis:RedisBackend", "redis"),
    "sqs": ("jobqueue_sqs:SQSBackend", "sqs"),
}

ENTRY_POINT_GROUP = "jobqueue.backends"


def _import(path: str, name: str) -> type[Backend]:
    module_name, _, attr = path.partition(":")
    if not attr:
        raise UnknownBackend(f"backend {name!r}: expected 'module:Class', got {path!r}")
    module = importlib.import_module(module_name)
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise UnknownBackend(f"backend {name!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UnknownBackend(f"backend {name!r}: {path!r} is not a jobqueue Backend subclass")
    return cls


def load_backend_class(name: str) -> type[Backend]:
    """The backend class for ``name``: a built-in alias, an installed entry point, or ``module:Class``."""
    if name in BACKENDS:
        path, extra = BACKENDS[name]
        try:
            return _import(path, name)
        except ModuleNotFoundError as exc:
            if extra is None or not (exc.name or "").startswith(path.split(":")[0].split(".")[0]):
                raise
            raise BackendNotInstalled(
                f"the {name!r} backend is not installed: pip install 'jobqueue[{extra}]'"
            ) from None
    if ":" in name:
        try:
            return _import(name, name)
        except ModuleNotFoundError as exc:
            raise UnknownBackend(f"backend {name!r}: cannot import module {exc.name!r}") from None
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return _import(entry.value, name)
    raise UnknownBackend(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}, or 'module:Class'")


def create_backend(name: str, **options: Any) -> Backend:
    """An instance of the backend ``name``, built with ``options``."""
    return load_backend_class(name)(**options)
