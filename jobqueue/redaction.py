"""Secret payload fields: stored intact, shown redacted (dashboard, admin API, webhooks, logs).

Mark them on the job, by name (dotted for nested fields)::

    @app.job(secret_fields=["password", "card.number"])
    def charge(payload: Charge) -> None: ...

or on the model, with ``Annotated``::

    class Charge(BaseModel):
        card_number: Annotated[str, Secret()]

Either way the handler receives the real value; only what is *shown* is redacted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

REDACTED = "[redacted]"


class Secret:
    """Marks a payload field as secret: ``Annotated[str, Secret()]``."""

    def __repr__(self) -> str:
        return "Secret()"


def secret_paths_of(model: type[BaseModel] | None, prefix: str = "", depth: int = 0) -> set[str]:
    """Dotted paths of the fields of ``model`` (and of nested models) annotated with :class:`Secret`."""
    found: set[str] = set()
    if model is None or depth > 8:
        return found
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        if any(isinstance(meta, Secret) or meta is Secret for meta in info.metadata):
            found.add(path)
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= secret_paths_of(annotation, f"{path}.", depth + 1)
    return found


def redact(payload: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``payload`` with the value at each dotted path replaced by ``"[redacted]"``.

    A path that crosses a list applies to every item of it (``"cards.number"``).
    """
    copy: dict[str, Any] = _copy(payload)
    for path in paths:
        _redact_path(copy, path.split("."))
    return copy


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _redact_path(node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _redact_path(item, parts)
        return
    if not isinstance(node, dict) or not parts or parts[0] not in node:
        return
    head, rest = parts[0], parts[1:]
    if rest:
        _redact_path(node[head], rest)
    elif node[head] is not None:
        node[head] = REDACTED
