"""``jobqueue sam export|check`` and ``jobqueue sqs init``: click groups the core CLI mounts lazily."""

from __future__ import annotations

import json
import os
import sys

import click

from jobqueue.errors import JobQueueError


def _spec(app_spec: str | None) -> str:
    """The app: this command's ``--app``, else the parent ``jobqueue --app``, else JOBQUEUE_APP."""
    context = click.get_current_context(silent=True)
    parent = context.find_object(dict) if context is not None else None
    spec = app_spec or (parent or {}).get("app_spec") or os.environ.get("JOBQUEUE_APP")
    if not spec:
        raise click.UsageError("name the app: --app module:attr, or JOBQUEUE_APP")
    return spec


def _load(app_spec: str) -> object:
    from jobqueue.cli_support import load_app

    try:
        return load_app(app_spec)
    except JobQueueError as exc:
        raise click.ClickException(str(exc)) from None


def _settings(app: object) -> object:
    from jobqueue_sqs.settings import SQSSettings

    settings = app.settings  # type: ignore[attr-defined]
    return SQSSettings.from_environ(settings.environ or os.environ, default_queue=settings.default_queue, prefix=settings.prefix)


_app_option = click.option("--app", "app_spec", default=None, help="The app, as module:attr (default: JOBQUEUE_APP).")


@click.group()
def sam() -> None:
    """The SAM template of the app's queues, generated from code."""


@sam.command("export")
@_app_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def export(app_spec: str | None, output: str | None) -> None:
    """Print (or write) template.yaml for the app's queues, table and worker function."""
    from jobqueue_sqs.sam import build_template, render

    spec = _spec(app_spec)
    app = _load(spec)
    try:
        text = render(build_template(app, _settings(app), spec))  # type: ignore[arg-type]
    except JobQueueError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)


@sam.command("check")
@_app_option
@click.argument("template", type=click.Path(exists=True, dir_okay=False))
def check(app_spec: str | None, template: str) -> None:
    """Fail if TEMPLATE and the app's code disagree (queues, DLQs, event sources, table, outputs)."""
    from jobqueue_sqs.sam import build_template, drift

    spec = _spec(app_spec)
    app = _load(spec)
    problems = drift(build_template(app, _settings(app), spec), template, app)  # type: ignore[arg-type]
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"{template} has drifted from {spec}: {len(problems)} difference(s); regenerate with `jobqueue sam export -o {template}`",
                   err=True)
        sys.exit(1)
    click.echo(f"{template} matches {spec}")


@click.group()
def sqs() -> None:
    """SQS backend tools."""


@sqs.command("init")
@_app_option
def init(app_spec: str | None) -> None:
    """Create the app's queues, their DLQs and the job table (as template.yaml does) at the configured endpoint."""
    from jobqueue_sqs.backend import SQSBackend

    app = _load(_spec(app_spec))
    backend = SQSBackend(settings=_settings(app))  # type: ignore[arg-type]
    backend.bind(app)  # type: ignore[arg-type]
    try:
        click.echo(json.dumps(backend.init(), indent=2))
    except JobQueueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        backend.close()


@sqs.command("worker")
@_app_option
@click.option("--queues", default=None, help="Comma-separated queues to poll (default: every declared queue).")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=1, show_default=True, help="Batches handled at once.")
@click.option("--grace", type=float, default=30.0, show_default=True, help="Seconds a batch gets to finish on SIGTERM.")
@click.option("--burst", is_flag=True, help="Handle what is receivable now, then exit.")
def worker(app_spec: str | None, queues: str | None, concurrency: int, grace: float, burst: bool) -> None:
    """The local event source mapping: long-poll the queues and call the Lambda handler with SQS events.

    The same as ``jobqueue worker --backend sqs``.
    """
    from jobqueue_sqs.backend import SQSBackend

    app = _load(_spec(app_spec))
    backend = app.backend  # type: ignore[attr-defined]
    if not isinstance(backend, SQSBackend):
        raise click.ClickException(f"the app runs on the {backend.name!r} backend: set JOBQUEUE_BACKEND=sqs")
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    backend.run_worker(queues=names, concurrency=concurrency, grace=grace, burst=burst)
