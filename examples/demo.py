"""A tour of jobqueue with the jobs of a real web app, on the default backend (sync: jobs run inline).

    make demo                              # sync, the default
    JOBQUEUE_BACKEND=memory python examples/demo.py

Every state change is printed as it happens, from the app's lifecycle hooks.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobEvent, JobQueue, JobState, Retention

app = JobQueue.from_env()
app.queue("email", attempts=3, backoff=Backoff.exponential(0.2), rate_limit="100/minute")
app.queue("reports", attempts=1, timeout=60, retention=Retention(completed=(100, "1h"), failed=(100, "1d")))
app.queue("sync", attempts=3, backoff=Backoff.fixed(0.1))


class WelcomeEmail(BaseModel):
    user_email: str
    user_name: str


class MonthlyReport(BaseModel):
    account_id: int
    months: int = 4


class IntegrationSync(BaseModel):
    integration: str


class Invoice(BaseModel):
    invoice_id: str
    amount_cents: int


@app.job(queue="email", priority=1)
def send_welcome_email(payload: WelcomeEmail, ctx: JobContext) -> dict[str, object]:
    """Pretend to send a welcome email."""
    return {"sent": True, "to": payload.user_email}


@app.job(queue="reports")
def generate_report(payload: MonthlyReport, ctx: JobContext) -> dict[str, object]:
    """Build a report month by month, reporting progress."""
    rows = 0
    for month in range(1, payload.months + 1):
        time.sleep(0.05)
        rows += 120 * month
        ctx.progress(100 * month / payload.months)
        show(ctx.job_id, "generate_report", f"progress {100 * month // payload.months}%")
    return {"account_id": payload.account_id, "rows": rows}


@app.job(queue="sync", retry_on=ConnectionError)
def sync_integration(payload: IntegrationSync, ctx: JobContext) -> dict[str, object]:
    """An upstream API that times out twice, then answers."""
    if ctx.attempt < 3:
        raise ConnectionError(f"{payload.integration} API timed out (attempt {ctx.attempt})")
    return {"integration": payload.integration, "synced": 42}


@app.job(queue="email", attempts=2)
def send_invoice_pdf(payload: Invoice, ctx: JobContext) -> None:
    """A PDF renderer that always rejects the template: this job ends failed."""
    raise ValueError(f"PDF renderer rejected the template for invoice {payload.invoice_id}")


class Summary(BaseModel):
    to: str


@app.job(queue="reports")
def render_invoice(payload: Invoice) -> dict[str, object]:
    """Render one invoice (a member of a group)."""
    return {"invoice": payload.invoice_id, "pages": 1 + payload.amount_cents // 2000}


@app.job(queue="email")
def email_invoice_summary(payload: Summary, ctx: JobContext) -> dict[str, object]:
    """The group's callback: runs once, after every invoice ended, and reads their results."""
    members = ctx.group_results()
    return {"to": payload.to, "rendered": len(members.results), "failed": len(members.failures)}


def show(job_id: str, name: str, what: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')}  {name:<20} {job_id[:8]}  {what}", flush=True)


def on_event(event: JobEvent) -> None:
    words = {
        "job_started": f"active (attempt {event.envelope.attempt}/{event.envelope.max_attempts})",
        "job_completed": f"completed -> {event.result}",
        "attempt_failed": f"attempt {event.envelope.attempt} failed: {event.error}; retrying",
        "job_failed": f"failed: {event.error}",
        "job_cancelled": "cancelled",
    }
    show(event.job_id, event.envelope.name, words[event.kind])


for kind in ("job_started", "job_completed", "attempt_failed", "job_failed", "job_cancelled"):
    app.on(kind)(on_event)  # type: ignore[arg-type]


def run_pending() -> None:
    """On the memory backend nothing runs until asked; on sync everything already ran."""
    backend = app.backend
    if app.backend_name == "memory":
        while True:
            backend.run_until_empty()  # type: ignore[attr-defined]
            due = backend.next_due()  # type: ignore[attr-defined]
            if due is None:
                return
            time.sleep(max(due - time.time(), 0) + 0.01)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    print(f"jobqueue demo on the {app.backend_name!r} backend ({app.health().status})\n")
    handles = [
        send_welcome_email.enqueue(user_email="ada@example.com", user_name="Ada"),
        generate_report.enqueue(account_id=7),
        sync_integration.enqueue(integration="salesforce"),
        send_invoice_pdf.enqueue(invoice_id="INV-1001", amount_cents=4999),
    ]
    for handle in handles:
        status = handle.status()
        show(handle.id, handle.name, f"enqueue returned; state {status.state.value if status else '?'}")
    run_pending()
    print("\nFinal states:")
    for handle in handles:
        status = handle.wait(timeout=30)
        detail = status.result if status.state is JobState.COMPLETED else status.error
        print(f"  {handle.name:<20} {status.state.value:<10} attempts {status.attempt}/{status.max_attempts}  {detail}")
    print("\nWorkflows: three invoices rendered as a group, then one summary email; a welcome email sent once")
    group = app.group(
        [render_invoice.s(invoice_id=f"INV-{n}", amount_cents=1500 * n) for n in (1, 2, 3)]
    ).then(email_invoice_summary.s(to="billing@example.com")).enqueue()
    first = send_welcome_email.enqueue(user_email="bo@example.com", user_name="Bo", _idempotency_key="welcome:bo")
    again = send_welcome_email.enqueue(user_email="bo@example.com", user_name="Bo", _idempotency_key="welcome:bo")
    show(again.id, "send_welcome_email", f"same idempotency key: {'a new job' if again.created else 'the first job'} (id {first.id[:8]})")
    run_pending()
    group.wait(timeout=30)
    callback = group.callback
    assert callback is not None
    print(f"  group {group.id[:8]}: {group.tally().completed}/{group.size} members completed; summary -> {callback.result(timeout=5)}")
    print("\nStats:", {name: {s.value: n for s, n in app.stats(name).counts.items() if n} for name in app.queues})


if __name__ == "__main__":
    main()
