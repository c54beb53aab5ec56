"""The ``jobqueue`` command: enqueue, inspect and steer jobs, and run workers."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from jobqueue.app import JobQueue
from jobqueue.cli_support import load_app
from jobqueue.errors import JobQueueError
from jobqueue.options import parse_duration
from jobqueue.states import JobState

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


def _app(ctx: click.Context) -> JobQueue:
    state = ctx.find_object(dict)
    assert state is not None
    if "app" not in state:
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
@click.option("--wait", "wait_seconds", type=float, default=None, help="Wait up to this many seconds for the job to finish.")
@click.pass_context
def status(ctx: click.Context, job_id: str, queue: str | None, wait_seconds: float | None) -> None:
    """Show a job's status by id (exit 1 if unknown)."""
    app = _app(ctx)
    handle = app.handle(job_id, queue)
    if handle is None:
        raise click.ClickException(f"no job {job_id!r} (never enqueued, or no longer retained)")
    found = handle.wait(wait_seconds) if wait_seconds is not None else handle.status()
    _echo_json(found.model_dump(mode="json") if found else None)


@main.command()
@click.argument("queue", required=False)
@click.pass_context
def stats(ctx: click.Context, queue: str | None) -> None:
    """Counts per state (and paused) of QUEUE, or of every declared queue."""
    app = _app(ctx)
    names = [queue] if queue else list(app.queues) or [app.settings.default_queue]
    _echo_json({name: app.stats(name).model_dump(mode="json") for name in names})


@main.command()
@click.pass_context
def health(ctx: click.Context) -> None:
    """Backend health as JSON; exit 0 when healthy or degraded, 1 when unhealthy."""
    report = _app(ctx).health()
    _echo_json(report.model_dump(mode="json"))
    if report.status == "unhealthy":
        sys.exit(1)


@main.command()
@click.option("--queue", required=True, help="Which queue.")
@click.option("--state", type=click.Choice([s.value for s in JobState]), default="failed", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next_cursor of the previous page.")
@click.pass_context
def jobs(ctx: click.Context, queue: str, state: str, limit: int, cursor: str | None) -> None:
    """List a queue's jobs in a state, a page at a time."""
    page = _app(ctx).list_jobs(queue, state, limit=limit, cursor=cursor)
    _echo_json(page.model_dump(mode="json"))


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
@click.option("--queues", default=None, help="Comma-separated queues to serve (default: every declared queue).")
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Jobs this worker runs at once.")
@click.option("--grace", type=float, default=None, help="Seconds active jobs get to finish on SIGTERM (default JOBQUEUE_SHUTDOWN_GRACE).")
@click.option("--burst", is_flag=True, help="Run what is due, then exit.")
@click.pass_context
def worker(ctx: click.Context, queues: str | None, concurrency: int, grace: float | None, burst: bool) -> None:
    """Run a worker for the app's backend until SIGTERM or SIGINT."""
    app = _app(ctx)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    app.backend.run_worker(
        queues=names, concurrency=concurrency, grace=app.settings.shutdown_grace if grace is None else grace, burst=burst
    )


if __name__ == "__main__":  # pragma: no cover
    main()
