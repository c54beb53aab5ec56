"""The admin ASGI app: JSON API, Prometheus metrics and the dashboard page, on any backend."""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import json
import os
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from jobqueue.admin.metrics import render_metrics
from jobqueue.admin.models import (
    CleanRequest,
    HealthResponse,
    HealthStatus,
    JobActionResult,
    JobList,
    JobView,
    QueueActionResult,
    QueueHealth,
    QueueView,
    StatsResponse,
    TimelineEntry,
)
from jobqueue.admin.openapi import openapi_document
from jobqueue.backends.base import Backend
from jobqueue.errors import BrokerUnavailable, CapabilityMissing, ConfigurationError, JobQueueError
from jobqueue.options import parse_duration
from jobqueue.states import JobState
from jobqueue.status import JobStatus, Throughput

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

AuthCheck = Callable[[Request], "bool | Awaitable[bool]"]

STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
MAX_LIMIT = 500
THROUGHPUT_CACHE_SECONDS = 10.0
SEVERITY = {"healthy": 0, "degraded": 1, "unhealthy": 2}


class AdminApp:
    """What the routes share: the job app, the auth policy and the display options."""

    def __init__(
        self, jq: JobQueue, *, token: str | None, auth: AuthCheck | None, loopback_only: bool,
        stall_after: float, throughput_minutes: int, title: str,
    ) -> None:
        self.jq = jq
        self.token = token
        self.auth = auth
        self.loopback_only = loopback_only
        self.stall_after = stall_after
        self.throughput_minutes = throughput_minutes
        self.title = title
        self._throughput_cache: dict[tuple[str, int], tuple[float, Throughput]] = {}

    # -- auth -------------------------------------------------------------------------------------------

    async def check(self, request: Request) -> None:
        """Let the request through, or raise 401."""
        if self.auth is not None:
            verdict = self.auth(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return
        if self.token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return
        elif self.auth is None and self.loopback_only and _is_loopback(request):
            return
        raise HTTPException(401, "admin only: send 'Authorization: Bearer <JOBQUEUE_ADMIN_TOKEN>'", {"WWW-Authenticate": "Bearer"})

    # -- reading -----------------------------------------------------------------------------------------

    def queue_names(self) -> list[str]:
        return sorted(self.jq.queues)

    def known_queue(self, name: str) -> str:
        if name not in self.jq.queues:
            raise HTTPException(404, f"no queue named {name!r} (known: {', '.join(self.queue_names()) or 'none'})")
        return name

    def throughput(self, name: str, minutes: int) -> Throughput:
        """The queue's throughput; the default one (a scan of finished jobs) is kept for a few seconds,
        so a dashboard polling every 2 s does not rescan a networked store each time."""
        backend = self.jq.backend
        if type(backend).throughput is not Backend.throughput:
            return backend.throughput(name, minutes)
        key = (name, minutes)
        now = time.monotonic()
        cached = self._throughput_cache.get(key)
        if cached is None or now - cached[0] >= THROUGHPUT_CACHE_SECONDS:
            cached = (now, backend.throughput(name, minutes))
            self._throughput_cache[key] = cached
        return cached[1]

    def queue_view(self, name: str, minutes: int) -> QueueView:
        stats = self.jq.stats(name)
        since = self.jq.oldest_waiting_since(name)
        now = self.jq.clock.now()
        return QueueView(
            queue=name, counts=stats.counts, paused=stats.paused, throughput=self.throughput(name, minutes),
            oldest_waiting_age=None if since is None else max(0.0, now - since),
        )

    def stats(self, names: list[str], minutes: int) -> StatsResponse:
        return StatsResponse(
            backend=self.jq.backend_name, generated_at=self.jq.clock.now(),
            queues={name: self.queue_view(name, minutes) for name in names},
        )

    def health(self) -> HealthResponse:
        try:
            backend = self.jq.health()
        except Exception as exc:  # noqa: BLE001 - a backend whose health check itself breaks is unhealthy
            return HealthResponse(status="unhealthy", backend=self.jq.backend_name, broker_reachable=False, detail=str(exc)[:500])
        report = HealthResponse(**backend.model_dump())
        if not backend.broker_reachable:
            return report
        now = self.jq.clock.now()
        worst = report.status
        for name in self.queue_names():
            try:
                stats = self.jq.stats(name)
                since = self.jq.oldest_waiting_since(name)
            except Exception as exc:  # noqa: BLE001 - one broken queue makes the report unhealthy, not a 500
                report.queues[name] = QueueHealth(status="unhealthy", paused=False, waiting=0, active=0, failed=0, reasons=[str(exc)[:200]])
                worst = "unhealthy"
                continue
            age = None if since is None else max(0.0, now - since)
            reasons = []
            status: HealthStatus = "healthy"
            if stats.paused:
                reasons.append("paused")
            elif age is not None and age > self.stall_after:
                status = "degraded"
                reasons.append(f"a job has waited {age:.0f}s (over {self.stall_after:g}s): are workers running?")
            report.queues[name] = QueueHealth(
                status=status, paused=stats.paused, waiting=stats[JobState.WAITING], active=stats[JobState.ACTIVE],
                failed=stats[JobState.FAILED], oldest_waiting_age=age, reasons=reasons,
            )
            if SEVERITY[status] > SEVERITY[worst]:
                worst = status
        report.status = worst
        return report

    def job_view(self, status: JobStatus) -> JobView:
        job = self.jq.registry.get(status.name)
        secret = sorted(job.secret_fields) if job is not None else []
        data = status.model_dump()
        data["payload"] = self.jq.redacted_payload(status.name, status.payload)
        timeline = [TimelineEntry(at=status.created_at, event="enqueued")]
        if status.not_before is not None and status.not_before > status.created_at:
            timeline.append(TimelineEntry(at=status.not_before, event=f"due (attempt {status.attempt})"))
        if status.started_at is not None:
            timeline.append(TimelineEntry(at=status.started_at, event=f"attempt {status.attempt} started"))
        if status.finished_at is not None:
            timeline.append(TimelineEntry(at=status.finished_at, event=status.state.value))
        timeline.sort(key=lambda entry: entry.at)
        return JobView(**data, redacted_fields=secret, timeline=timeline)

    def find(self, job_id: str, queue: str | None) -> JobStatus:
        status = self.jq.get(job_id, queue)
        if status is None:
            raise HTTPException(404, f"no job {job_id!r} (never enqueued, or no longer retained)")
        return status

    def list_jobs(self, queue: str | None, state: JobState, limit: int, cursor: str | None) -> JobList:
        """One queue's page, or (no queue) a page across every queue: the cursor is ``<queue index>:<inner cursor>``."""
        if queue is not None:
            page = self.jq.list_jobs(queue, state, limit=limit, cursor=cursor)
            return JobList(jobs=[self.job_view(j) for j in page.jobs], next_cursor=page.next_cursor)
        names = self.queue_names()
        index, inner = 0, None
        if cursor:
            head, _, rest = cursor.partition(":")
            if not head.isdigit():
                raise _unprocessable("cursor", "not a cursor this API gave out")
            index, inner = int(head), rest or None
        jobs: list[JobView] = []
        while index < len(names) and len(jobs) < limit:
            page = self.jq.list_jobs(names[index], state, limit=limit - len(jobs), cursor=inner)
            jobs.extend(self.job_view(j) for j in page.jobs)
            if page.next_cursor is not None:
                return JobList(jobs=jobs, next_cursor=f"{index}:{page.next_cursor}")
            index, inner = index + 1, None
        more = index < len(names) and any(self.jq.stats(n)[state] for n in names[index:])
        return JobList(jobs=jobs, next_cursor=f"{index}:" if more else None)

    # -- the page ---------------------------------------------------------------------------------------------

    def page(self, request: Request) -> str:
        html = _asset("index.html")
        base = request.scope.get("root_path", "").rstrip("/")
        return html.replace("{{BASE}}", _attr(base)).replace("{{TITLE}}", _attr(self.title))


# -- helpers -------------------------------------------------------------------------------------------------


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _asset(name: str) -> str:
    return resources.files("jobqueue.admin").joinpath("static", name).read_text("utf-8")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _unprocessable(where: str, message: str) -> HTTPException:
    return HTTPException(422, json.dumps([{"loc": [where], "msg": message}]))


def _json(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _unprocessable(f"query.{name}", f"must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise _unprocessable(f"query.{name}", f"must be an integer from {low} to {high}")
    return value


def _state_param(request: Request, default: JobState) -> JobState:
    raw = request.query_params.get("state")
    if not raw:
        return default
    try:
        return JobState(raw)
    except ValueError:
        raise _unprocessable("query.state", f"must be one of {', '.join(s.value for s in JobState)}") from None


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser's stack
        raise _unprocessable("body", "not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, json.dumps(exc.errors(include_url=False, include_context=False), default=str)) from None


# -- the app ---------------------------------------------------------------------------------------------------


def create_admin_app(
    jq: JobQueue,
    *,
    token: str | None = None,
    auth: AuthCheck | None = None,
    loopback_only: bool = False,
    stall_after: float = 300.0,
    throughput_minutes: int = 15,
    title: str = "jobqueue",
) -> Starlette:
    """Build the admin ASGI app for ``jq``.

    Access: ``auth(request)`` (sync or async) returning True, or ``Authorization: Bearer <token>`` with
    ``token`` (default: ``JOBQUEUE_ADMIN_TOKEN`` from the app's settings or the environment). Without
    either it refuses to build, unless ``loopback_only`` (what ``jobqueue dashboard`` uses when it binds
    to 127.0.0.1 without a token), which lets through only requests from a loopback address.

    ``stall_after``: seconds a job may wait before its queue reports ``degraded``.
    """
    token = token or jq.settings.admin_token or os.environ.get("JOBQUEUE_ADMIN_TOKEN") or None
    if token is None and auth is None and not loopback_only:
        raise ConfigurationError(
            "the admin API is admin only: set JOBQUEUE_ADMIN_TOKEN, or pass token=..., or auth=<callable(request) -> bool> "
            "for your app's own auth; refusing to build it open"
        )
    admin = AdminApp(
        jq, token=token, auth=auth, loopback_only=loopback_only, stall_after=stall_after,
        throughput_minutes=throughput_minutes, title=title,
    )

    async def call(func: Callable[..., Any], *args: Any) -> Any:
        try:
            return await run_in_threadpool(func, *args)
        except HTTPException:
            raise
        except BrokerUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        except CapabilityMissing as exc:
            raise HTTPException(501, str(exc)) from None
        except ConfigurationError as exc:
            raise _unprocessable("body", str(exc)) from None
        except JobQueueError as exc:
            raise HTTPException(400, str(exc)) from None

    async def index(request: Request) -> Response:
        return HTMLResponse(admin.page(request), headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise HTTPException(404, "not found")
        return Response(_asset(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(admin.title, request.scope.get("root_path", "")))

    async def stats(request: Request) -> Response:
        await admin.check(request)
        minutes = _int_param(request, "minutes", admin.throughput_minutes, 1, 120)
        queue = request.query_params.get("queue")
        names = [admin.known_queue(queue)] if queue else admin.queue_names()
        return _json(await call(admin.stats, names, minutes))

    async def health(request: Request) -> Response:
        await admin.check(request)
        report: HealthResponse = await run_in_threadpool(admin.health)
        return _json(report, 503 if report.status == "unhealthy" else 200)

    async def jobs(request: Request) -> Response:
        await admin.check(request)
        queue = request.query_params.get("queue") or None
        if queue is not None:
            admin.known_queue(queue)
        state = _state_param(request, JobState.FAILED)
        limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
        cursor = request.query_params.get("cursor") or None
        return _json(await call(admin.list_jobs, queue, state, limit, cursor))

    async def job(request: Request) -> Response:
        await admin.check(request)
        status = await call(admin.find, request.path_params["job_id"], request.query_params.get("queue") or None)
        return _json(admin.job_view(status))

    def job_action(action: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await admin.check(request)
            job_id = request.path_params["job_id"]
            status = await call(admin.find, job_id, request.query_params.get("queue") or None)
            steer = admin.jq.retry if action == "retry" else admin.jq.cancel
            ok = await call(steer, job_id, status.queue)
            if not ok:
                why = "only failed or cancelled jobs are retried" if action == "retry" else "it has already finished"
                raise HTTPException(409, f"job {job_id!r} is {status.state.value}: {why}")
            after = await call(admin.jq.get, job_id, status.queue)
            return _json(JobActionResult(id=job_id, queue=status.queue, action=action, ok=True, state=after.state if after else None))  # type: ignore[arg-type]

        return endpoint

    def queue_action(action: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await admin.check(request)
            name = admin.known_queue(request.path_params["name"])
            if action == "pause":
                await call(admin.jq.pause, name)
                return _json(QueueActionResult(queue=name, action="pause", paused=True))
            if action == "resume":
                await call(admin.jq.resume, name)
                return _json(QueueActionResult(queue=name, action="resume", paused=False))
            if action == "retry-failed":
                return _json(QueueActionResult(queue=name, action="retry-failed", count=await call(admin.jq.retry_failed, name)))
            body: CleanRequest = await _body(request, CleanRequest)
            try:
                older_than = parse_duration(body.older_than, what="older_than")
            except ConfigurationError as exc:
                raise _unprocessable("body.older_than", str(exc)) from None
            removed = await call(admin.jq.clean, name, body.state, older_than)
            return _json(QueueActionResult(queue=name, action="clean", count=removed))

        return endpoint

    async def metrics(request: Request) -> Response:
        await admin.check(request)
        report = await run_in_threadpool(admin.health)
        snapshot = None
        if report.broker_reachable:
            snapshot = await call(admin.stats, admin.queue_names(), 5)
        return PlainTextResponse(render_metrics(report, snapshot), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail: Any = exc.detail
        if exc.status_code == 422:
            try:
                detail = json.loads(exc.detail)
            except ValueError:
                pass
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/api/stats", stats, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/api/jobs", jobs, methods=["GET"]),
        Route("/api/jobs/{job_id:path}/retry", job_action("retry"), methods=["POST"]),
        Route("/api/jobs/{job_id:path}/cancel", job_action("cancel"), methods=["POST"]),
        Route("/api/jobs/{job_id:path}", job, methods=["GET"]),
        *(Route(f"/api/queues/{{name}}/{action}", queue_action(action), methods=["POST"]) for action in ("pause", "resume", "retry-failed", "clean")),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.admin = admin
    return app
