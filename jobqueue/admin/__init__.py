"""The admin HTTP API and dashboard (extra ``admin``: Starlette and uvicorn), for every backend.

Mount it in a FastAPI or Starlette app::

    web.mount("/admin", app.admin_asgi())               # bearer token from JOBQUEUE_ADMIN_TOKEN
    web.mount("/admin", app.admin_asgi(auth=is_staff))  # or the host app's own check on the request

or run it alone: ``jobqueue dashboard --port 8080``. Nothing here is imported by ``import jobqueue``.
"""

from __future__ import annotations

from jobqueue.errors import ConfigurationError

try:
    import starlette  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError("the admin API and dashboard need the admin extra: pip install 'jobqueue[admin]'") from None

from jobqueue.admin.app import create_admin_app

__all__ = ["create_admin_app"]
