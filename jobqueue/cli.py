"""The ``jobqueue`` command: enqueue, inspect and steer jobs, and run workers."""

from __future__ import annotations

import gc
import importlib
import inspect
import ipaddress
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from jobqueue.errors import JobQueueError
from jobqueue.states import JobState

if TYPE_CHECKING:
    # the app's graph (pydantic, the backends) loads with the app, in _app(): see _load_worker_app
    from jobqueue.app import JobQueue
    from jobqueue.handle import JobHandle
    from jobqueue.status import JobStatus

#: subcommand groups that live in backend packages, imported only when asked for
LAZY_GROUPS: dict[str, tuple[str, str]] = {
    "sam": ("jobqueue_sqs.cli:sam", "sqs"),
    "sqs": ("jobqueue_sqs.cli:sqs", "sqs"),
}


class _Group(click.Group):
    """Turns jobqueue's own errors into one clear line, and mounts backend groups lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_GROUPS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_GROUPS and name not in self.commands:
            path, extra = LAZY_GROUPS[name]
            module_name, _, attr = path.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError:
                return _missing_extra(name, extra)
            command = getattr(module, attr, None)
            return command if isinstance(command, click.Command) else _missing_extra(name, extra)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobQueueError as exc:
            raise click.ClickException(str(exc)) from None


def _missing_extra(name: str, extra: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing() -> None:
        raise click.ClickException(f"'jobqueue {name}' needs the {extra} backend: pip install 'jobqueue[{extra}]'")

    return missing


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, sort_keys=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric)).rstrip()

    click.echo(line(cells[0]))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        click.echo(line(row))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 1.5:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _app(ctx: click.Context) -> JobQueue:
    state = ctx.find_object(dict)
    assert state is not None
    if "app" not in state:
        from jobqueue.cli_support import load_app

        app = load_app(state.get("app_spec"))
        if state.get("backend"):
            app.set_backend(state["backend"])
        state["app"] = app
    loaded: JobQueue = state["app"]
    return loaded


@click.group(cls=_Group)
@click.option("--app", "app_spec", envvar="JOBQUEUE_APP", help="Where the jobs are defined: module:attribute (or JOBQUEUE_APP).")
@click.option("--backend", default=None, help="Override JOBQUEUE_BACKEND: sync, memory, redis, sqs or module:Class.")
@click.version_option(package_name="jobqueue")
@click.pass_context
def main(ctx: click.Context, app_spec: str | None, backend: str | None) -> None:
    """jobqueue: typed background jobs on Redis, SQS + Lambda, or inline."""
    ctx.ensure_object(dict)
    ctx.obj.update(app_spec=app_spec, backend=backend)


@main.command()
@click.argument("name")
@click.argument("payload", default="{}")
@click.option("--delay", default=None, help="Run no earlier than this from now (seconds, or '10m', '2h').")
@click.option("--job-id", default=None, help="A job id of your own; the same id in one queue is one job.")
@click.option("--priority", type=click.IntRange(1, 10), default=None, help="1 = most urgent .. 10.")
@click.pass_context
def enqueue(ctx: click.Context, name: str, payload: str, delay: str | None, job_id: str | None, priority: int | None) -> None:
    """Enqueue job NAME with a JSON PAYLOAD; prints the job's id."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="PAYLOAD") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint="PAYLOAD")
    from jobqueue.options import parse_duration

    options: dict[str, Any] = {}
    if delay is not None:
        options["_delay"] = parse_duration(delay, what="--delay")
    if job_id is not None:
        options["_job_id"] = job_id
    if priority is not None:
        options["_priority"] = priority
    handle = _app(ctx).enqueue(name, data, **options)
    _echo_json({"id": handle.id, "queue": handle.queue, "created": handle.created})


@main.command()
@click.argument("job_id")
@click.option("--queue", default=None, help="The job's queue (faster on some backends).")
@click.option(
    "--wait", "wait_seconds", type=float, is_flag=False, flag_value=-1.0, default=None,
    help="Show a live progress bar until the job ends (give SECONDS to stop waiting after that long).",
)
@json_option
@click.pass_context
def status(ctx: click.Context, job_id: str, queue: str | None, wait_seconds: float | None, as_json: bool) -> None:
    """Show a job's status by id (exit 1 if unknown, or if --wait ran out first)."""
    app = _app(ctx)
    handle = app.handle(job_id, queue)
    if handle is None:
        raise click.ClickException(f"no job {job_id!r} (never enqueued, or no longer retained)")
    found = handle.status()
    if wait_seconds is not None and found is not None and not found.is_finished:
        found = _wait_with_progress(handle, None if wait_seconds < 0 else wait_seconds)
    if found is None:
        raise click.ClickException(f"job {job_id!r} is no longer retained")
    if as_json:
        data = found.model_dump(mode="json")
        data["payload"] = app.redacted_payload(found.name, found.payload)  # secret fields, as everywhere else
        _echo_json(data)
    else:
        _print_status(app, found)
    if wait_seconds is not None and not found.is_finished:
        raise click.ClickException(f"job {job_id!r} is still {found.state.value} after {wait_seconds:g}s")


def _wait_with_progress(handle: JobHandle, timeout: float | None) -> JobStatus | None:
    """Poll the job, drawing a progress bar on stderr, until it ends or ``timeout`` runs out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    current = handle.status()
    shown = 0
    with click.progressbar(length=100, label=f"{handle.name} {handle.id}", file=sys.stderr, show_percent=True,
                           item_show_func=lambda state: state) as bar:
        while current is not None:
            step = int(current.progress) - shown
            if step > 0:
                bar.update(step, current.state.value)
                shown += step
            else:
                bar.update(0, current.state.value)
            if current.is_finished or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
            current = handle.status()
    return current


def _print_status(app: JobQueue, job: JobStatus) -> None:
    payload = app.redacted_payload(job.name, job.payload)
    rows: list[tuple[str, Any]] = [
        ("id", job.id), ("job", job.name), ("queue", job.queue), ("state", job.state.value),
        ("progress", f"{job.progress:g}%"), ("attempt", f"{job.attempt} of {job.max_attempts}"), ("priority", job.priority),
        ("created", _when(job.created_at)), ("started", _when(job.started_at)), ("finished", _when(job.finished_at)),
        ("payload", json.dumps(payload, default=str)),
    ]
    if job.result is not None:
        rows.append(("result", json.dumps(job.result, default=str)))
    if job.error is not None:
        rows.append(("error", f"{job.error.type}: {job.error.message}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    if job.error is not None and job.error.traceback:
        click.echo("")
        click.echo(job.error.traceback.rstrip())


@main.command()
@click.argument("queue", required=False)
@click.option("--minutes", type=click.IntRange(1, 120), default=5, show_default=True, help="Throughput window.")
@json_option
@click.pass_context
def stats(ctx: click.Context, queue: str | None, minutes: int, as_json: bool) -> None:
    """Counts per state, paused, throughput and oldest waiting job of QUEUE, or of every declared queue."""
    app = _app(ctx)
    names = [queue] if queue else list(app.queues) or [app.settings.default_queue]
    now = app.clock.now()
    report = {}
    for name in names:
        since = app.oldest_waiting_since(name)
        flow = app.throughput(name, minutes)
        report[name] = {
            **app.stats(name).model_dump(mode="json"),
            "oldest_waiting_age": None if since is None else max(0.0, now - since),
            "completed_recent": sum(flow.completed), "failed_recent": sum(flow.failed), "minutes": minutes,
        }
    if as_json:
        _echo_json(report)
        return
    states = [JobState.WAITING, JobState.ACTIVE, JobState.DELAYED, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]
    _table(
        ["queue", *[s.value for s in states], "paused", "oldest waiting", f"done/{minutes}m", f"failed/{minutes}m"],
        [
            [name, *[r["counts"].get(s.value, 0) for s in states], "yes" if r["paused"] else "no", _age(r["oldest_waiting_age"]),
             r["completed_recent"], r["failed_recent"]]
            for name, r in report.items()
        ],
    )


@main.command()
@json_option
@click.option("--stall-after", type=float, default=300.0, show_default=True, help="Seconds a job may wait before its queue is degraded.")
@click.pass_context
def health(ctx: click.Context, as_json: bool, stall_after: float) -> None:
    """Backend and per-queue health; exit 0 when healthy or degraded, 1 when unhealthy."""
    app = _app(ctx)
    report = app.health()
    queues: dict[str, dict[str, Any]] = {}
    overall = report.status
    if report.broker_reachable:
        now = app.clock.now()
        for name in app.queues:
            counts = app.stats(name)
            since = app.oldest_waiting_since(name)
            age = None if since is None else max(0.0, now - since)
            state = "degraded" if (not counts.paused and age is not None and age > stall_after) else "healthy"
            if state == "degraded" and overall == "healthy":
                overall = "degraded"
            queues[name] = {"status": state, "paused": counts.paused, "waiting": counts[JobState.WAITING],
                            "failed": counts[JobState.FAILED], "oldest_waiting_age": age}
    data = {**report.model_dump(mode="json"), "status": overall, "queues": queues}
    if as_json:
        _echo_json(data)
    else:
        latency = "-" if report.latency_ms is None else f"{report.latency_ms:.1f} ms"
        click.echo(f"{overall}  backend={report.backend}  broker={'reachable' if report.broker_reachable else 'UNREACHABLE'}  latency={latency}")
        if report.detail:
            click.echo(f"detail: {report.detail}")
        if queues:
            click.echo("")
            _table(["queue", "status", "paused", "waiting", "failed", "oldest waiting"],
                   [[n, q["status"], "yes" if q["paused"] else "no", q["waiting"], q["failed"], _age(q["oldest_waiting_age"])] for n, q in queues.items()])
    if overall == "unhealthy":
        sys.exit(1)


@main.command()
@click.option("--queue", default=None, help="Which queue (default: every declared queue).")
@click.option("--state", type=click.Choice([s.value for s in JobState]), default="failed", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next_cursor of the previous page (with --queue).")
@json_option
@click.pass_context
def jobs(ctx: click.Context, queue: str | None, state: str, limit: int, cursor: str | None, as_json: bool) -> None:
    """List jobs in a state, oldest first, a page at a time."""
    app = _app(ctx)
    names = [queue] if queue else list(app.queues)
    found: list[JobStatus] = []
    next_cursor = None
    for name in names:
        page = app.list_jobs(name, state, limit=limit - len(found), cursor=cursor if queue else None)
        found.extend(page.jobs)
        next_cursor = page.next_cursor if queue else None
        if len(found) >= limit:
            break
    if as_json:
        jobs_json = []
        for job in found:
            data = job.model_dump(mode="json")
            data["payload"] = app.redacted_payload(job.name, job.payload)
            jobs_json.append(data)
        _echo_json({"jobs": jobs_json, "next_cursor": next_cursor})
        return
    if not found:
        click.echo(f"no {state} jobs")
        return
    _table(
        ["id", "job", "queue", "attempt", "progress", "created", "error"],
        [[j.id, j.name, j.queue, f"{j.attempt}/{j.max_attempts}", f"{j.progress:g}%", _when(j.created_at),
          "" if j.error is None else f"{j.error.type}: {j.error.message}"[:80]] for j in found],
    )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


@main.command()
@click.argument("job_id")
@click.option("--queue", default=None)
@click.pass_context
def cancel(ctx: click.Context, job_id: str, queue: str | None) -> None:
    """Cancel a job: a pending one is removed, an active one asked to stop."""
    if not _app(ctx).cancel(job_id, queue):
        raise click.ClickException(f"job {job_id!r} was not cancelled: unknown or already finished")
    _echo_json({"id": job_id, "cancelled": True})


@main.command()
@click.argument("job_id")
@click.option("--queue", default=None)
@click.pass_context
def retry(ctx: click.Context, job_id: str, queue: str | None) -> None:
    """Send a failed or cancelled job back to waiting with fresh attempts."""
    if not _app(ctx).retry(job_id, queue):
        raise click.ClickException(f"job {job_id!r} was not retried: unknown, or not failed or cancelled")
    _echo_json({"id": job_id, "retried": True})


@main.command("retry-failed")
@click.argument("queue")
@click.pass_context
def retry_failed(ctx: click.Context, queue: str) -> None:
    """Retry every failed job of QUEUE."""
    _echo_json({"queue": queue, "retried": _app(ctx).retry_failed(queue)})


@main.command()
@click.argument("queue")
@click.pass_context
def pause(ctx: click.Context, queue: str) -> None:
    """Start no more jobs of QUEUE (enqueueing still works)."""
    _app(ctx).pause(queue)
    _echo_json({"queue": queue, "paused": True})


@main.command()
@click.argument("queue")
@click.pass_context
def resume(ctx: click.Context, queue: str) -> None:
    """Resume a paused QUEUE."""
    _app(ctx).resume(queue)
    _echo_json({"queue": queue, "paused": False})


@main.command()
@click.argument("queue")
@click.option("--state", type=click.Choice([s.value for s in JobState if s is not JobState.ACTIVE]), default="completed", show_default=True)
@click.option("--older-than", default="0", show_default=True, help="Only jobs older than this (e.g. '1h', '7d').")
@click.pass_context
def clean(ctx: click.Context, queue: str, state: str, older_than: str) -> None:
    """Remove QUEUE's jobs in STATE older than --older-than."""
    from jobqueue.options import parse_duration

    removed = _app(ctx).clean(queue, state, parse_duration(older_than, what="--older-than"))
    _echo_json({"queue": queue, "state": state, "removed": removed})


@main.group()
def schedules() -> None:
    """Recurring schedules: those defined in code and the dynamic ones of the backend."""


@schedules.command("list")
@click.pass_context
def schedules_list(ctx: click.Context) -> None:
    """Each schedule with its cron, time zone, job, and next fire time (UTC)."""
    _echo_json(_app(ctx).schedules.describe())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; other than loopback it needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--token", default=None, help="Bearer token (default JOBQUEUE_ADMIN_TOKEN).")
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Serve the admin API and dashboard. Without a token it binds to loopback only."""
    app = _app(ctx)
    token = token or app.settings.admin_token or os.environ.get("JOBQUEUE_ADMIN_TOKEN") or None
    if token is None and not _is_loopback(host):
        raise click.ClickException(f"refusing to serve the admin API on {host} without a token: set JOBQUEUE_ADMIN_TOKEN or --token")
    try:
        import uvicorn

        from jobqueue.admin import create_admin_app
    except (ModuleNotFoundError, JobQueueError):
        raise click.ClickException("'jobqueue dashboard' needs the admin extra: pip install 'jobqueue[admin]'") from None
    asgi = create_admin_app(app, token=token, loopback_only=token is None)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"jobqueue dashboard on http://{shown}:{port}/" + ("" if token is None else "  (open it with #token=<token>)"), err=True)
    uvicorn.run(asgi, host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
@click.option("--queues", default=None, help="Comma-separated queues to serve (default: every declared queue).")
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Jobs this worker runs at once.")
@click.option("--grace", type=float, default=None, help="Seconds active jobs get to finish on SIGTERM (default JOBQUEUE_SHUTDOWN_GRACE).")
@click.option("--burst", is_flag=True, help="Run what is due, then exit.")
@click.option("--processes", type=click.IntRange(1, 1024), default=None,
              help="Worker processes, each at --concurrency, restarted if one dies (default: one per core where the backend "
                   "runs processes, as Redis does; 1 with --burst).")
@click.pass_context
def worker(ctx: click.Context, queues: str | None, concurrency: int, grace: float | None, burst: bool, processes: int | None) -> None:
    """Run a worker for the app's backend until SIGTERM or SIGINT."""
    app = _load_worker_app(ctx)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    options: dict[str, object] = {}
    try:
        if "processes" in inspect.signature(app.backend.run_worker).parameters:
            options["processes"] = processes or (1 if burst else _cores())
        elif processes not in (None, 1):
            raise click.ClickException(f"the {app.backend_name} backend runs one worker process; start several instead of --processes")
        app.backend.run_worker(
            queues=names, concurrency=concurrency, grace=app.settings.shutdown_grace if grace is None else grace, burst=burst,
            **options,
        )
    finally:
        gc.unfreeze()  # a worker run in-process (tests) hands its objects back to the collector


def _load_worker_app(ctx: click.Context) -> JobQueue:
    """The app, with its backend built, loaded while the cyclic garbage collector waits; then frozen (``gc.freeze``).

    Loading imports most of what a worker holds until it exits: pydantic, the backend's client library, the app's
    jobs and models, some 65,000 objects the collector tracks. Collecting while they pile up finds next to nothing
    (a few hundred objects) and cost ~3% of the instructions from launch to the first job; frozen, they stay out of
    every later collection, and the processes a supervisor forks do not copy the memory pages a collection would
    write to (the ``gc`` module's advice for servers that fork).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        app = _app(ctx)
        app.backend  # noqa: B018 - built now, with the rest of the start-up
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return app


def _cores() -> int:
    """The cores this process may use: the default number of worker processes.

    The CPUs it may run on, capped by a cgroup v2 CPU quota (a container's ``--cpus``, a Kubernetes CPU limit).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(cores, 1)


if __name__ == "__main__":  # pragma: no cover
    main()
