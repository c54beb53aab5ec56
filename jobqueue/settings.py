"""Settings: one pydantic model, read from the environment once, when the app asks for it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobqueue.errors import ConfigurationError
from jobqueue.webhook_allow import check_entry, split_entries

ENV_PREFIX = "JOBQUEUE_"


class Settings(BaseModel):
    """Core settings. Each field ``x`` is read from ``JOBQUEUE_X``.

    Backends read their own settings (a Redis URL, a queue URL) from the same
    snapshot of the environment; see :attr:`environ`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str = "sync"
    app: str | None = None
    default_queue: str = "default"
    default_attempts: int = Field(default=3, ge=1, le=1000)
    #: seconds a job without a timeout of its own (job, queue, ``_timeout``) may run; ``none`` for no bound
    default_timeout: float | None = Field(default=300.0, gt=0)
    fallback: Literal["sync", "raise"] = "sync"
    prefix: str = Field(default="jobqueue", min_length=1)
    shutdown_grace: float = Field(default=30.0, ge=0)
    max_payload_bytes: int = Field(default=1_048_576, ge=1024)
    #: default URL for job events (a queue's ``webhook=`` or a job's ``_webhook=`` take precedence)
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    #: HMAC-SHA256 key signing webhook deliveries
    webhook_secret: str | None = Field(default=None, repr=False)
    #: also send an event for each failed attempt that will be retried
    webhook_attempt_failed: bool = False
    #: where jobs' own ``_webhook=`` URLs may point: URL prefixes or host names, ``*`` for any (see
    #: jobqueue.webhook_allow); the app's own URLs (``webhook_url``, a queue's ``webhook=``) need no entry
    webhook_allow: tuple[str, ...] = ()
    #: the bearer token of the admin API and dashboard
    admin_token: str | None = Field(default=None, repr=False)
    environ: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("backend")
    @classmethod
    def _backend_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a backend (sync, memory, redis, sqs, or module:Class)")
        return value

    @field_validator("default_timeout", mode="before")
    @classmethod
    def _no_default_timeout(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "off") else value

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _webhook_allow(cls, value: Any) -> Any:
        entries = split_entries(value) if isinstance(value, str) else value
        if isinstance(entries, (list, tuple)):
            return tuple(check_entry(e) if isinstance(e, str) else e for e in entries)
        return entries

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``JOBQUEUE_*`` variables from ``environ`` (default: ``os.environ``) once.

        A value that does not fit raises :class:`ConfigurationError` naming the variable.
        """
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.model_fields:
            if name == "environ":
                continue
            variable = ENV_PREFIX + name.upper()
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
                sources[name] = variable
        for name, value in overrides.items():
            if name not in cls.model_fields or name == "environ":
                raise ConfigurationError(f"unknown setting {name!r}; known: {', '.join(sorted(set(cls.model_fields) - {'environ'}))}")
            values[name] = value
            sources[name] = name
        try:
            return cls(environ=env, **values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "?"
                where = sources.get(field, ENV_PREFIX + field.upper())
                problems.append(f"{where}={values.get(field)!r}: {err['msg']}")
            raise ConfigurationError("invalid setting: " + "; ".join(problems)) from None
