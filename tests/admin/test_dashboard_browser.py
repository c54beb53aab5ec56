"""The dashboard in a real headless Chromium (Debian's, driven by Playwright; nothing downloads a browser)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from jobqueue import JobContext, JobQueue, JobState, Secret
from tests.admin.server import serve

CHROMIUM = os.environ.get("JOBQUEUE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "browser-test-token"

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is not installed (infra/ensure-chromium.sh installs it)")


class Email(BaseModel):
    to: str
    api_key: Annotated[str, Secret()] = ""


class Report(BaseModel):
    account: int


def build_app() -> tuple[JobQueue, dict[str, Any]]:
    app = JobQueue(backend="memory")
    app.queue("emails", attempts=1)
    app.queue("reports", attempts=1)

    @app.job(queue="emails")
    def send_email(payload: Email, ctx: JobContext) -> dict[str, str]:
        ctx.progress(100)
        return {"sent": payload.to}

    @app.job(queue="reports")
    def build_report(payload: Report) -> None:
        raise ValueError(f"account {payload.account} has no data for this month")

    for n in range(3):
        send_email.enqueue(to=f"user{n}@example.org", api_key="sk-live-123")
    failed = build_report.enqueue(account=42)
    app.backend.run_until_empty()
    app.pause("emails")
    waiting = send_email.enqueue(to="later@example.org", api_key="sk-live-123")
    return app, {"failed": failed.id, "waiting": waiting.id}


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield launched
        finally:
            launched.close()


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_dashboard_shows_counts_traceback_and_retries(browser: Any) -> None:
    from playwright.sync_api import expect

    app, ids = build_app()
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(app.admin_asgi(token=TOKEN)) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        external: list[str] = []
        page.on("request", lambda request: external.append(request.url) if not request.url.startswith((base, "data:")) else None)
        page.set_default_timeout(10_000)

        page.goto(f"{base}/#token={TOKEN}")
        emails = page.locator('tr[data-queue="emails"]')
        expect(emails.locator('td[data-state="completed"]')).to_have_text("3")
        expect(emails.locator('td[data-state="waiting"]')).to_have_text("1")
        expect(emails).to_contain_text("paused")
        reports = page.locator('tr[data-queue="reports"]')
        expect(reports.locator('td[data-state="failed"]')).to_have_text("1")
        expect(page.get_by_test_id("health")).to_contain_text("healthy")

        card = page.locator(f'[data-testid="failed-list"] article[data-job-id="{ids["failed"]}"]')
        traceback = card.locator('pre[data-testid="traceback"]')
        expect(traceback).to_be_visible()
        expect(traceback).to_contain_text("Traceback (most recent call last)")
        expect(traceback).to_contain_text("ValueError: account 42 has no data for this month")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # the job's detail: payload with secrets redacted, progress, attempts, timeline
        page.locator(f'#job-rows tr[data-job-id="{ids["failed"]}"]').click()
        detail = page.get_by_test_id("job-detail")
        expect(detail.get_by_test_id("job-state")).to_have_text("failed")
        expect(detail).to_contain_text("attempts")
        expect(detail).to_contain_text("Timeline")
        page.locator('#browse-queue').select_option("emails")
        page.locator('#browse-state').select_option("waiting")
        page.locator(f'#job-rows tr[data-job-id="{ids["waiting"]}"]').click()
        expect(detail.get_by_test_id("payload")).to_contain_text('"api_key": "[redacted]"')
        expect(detail).not_to_contain_text("sk-live-123")
        page.screenshot(path=str(ARTIFACTS / "dashboard-job.png"), full_page=True)

        # retry the failed job from its card: it goes back to waiting, and leaves the failed list
        card.locator('button[data-action="retry"]').click()
        wait_until(lambda: app.get(ids["failed"]).state is JobState.WAITING)
        expect(card).to_have_count(0)
        expect(reports.locator('td[data-state="waiting"]')).to_have_text("1")

        # it updates itself: a job finished behind its back shows up without a reload
        app.resume("emails")
        app.backend.run_until_empty()
        expect(emails.locator('td[data-state="completed"]')).to_have_text("4")
        expect(emails).not_to_contain_text("paused")
        page.screenshot(path=str(ARTIFACTS / "dashboard-after-retry.png"), full_page=True)

        # pause and resume a queue, clean its completed jobs, cancel a waiting job: all from buttons
        reports.locator('button[data-action="pause"]').click()
        expect(reports).to_contain_text("paused")
        assert app.stats("reports").paused
        reports.locator('button[data-action="resume"]').click()
        expect(reports).not_to_contain_text("paused")
        detail.get_by_role("button", name="Close").click()
        emails.locator('button[data-action="clean"]').click()
        clean_form = page.locator("tr.clean-form")
        clean_form.get_by_label("state to clean").select_option("completed")
        clean_form.locator("button[type=submit]").click()
        expect(emails.locator('td[data-state="completed"]')).to_have_text("0")
        app.pause("reports")
        pending = app.enqueue("build_report", {"account": 7})
        page.locator('#browse-queue').select_option("reports")
        page.locator('#browse-state').select_option("waiting")
        page.locator(f'#job-rows tr[data-job-id="{pending.id}"]').click()
        detail.locator('button[data-action="cancel"]').click()
        expect(detail.get_by_test_id("job-state")).to_have_text("cancelled")
        assert app.get(pending.id).state is JobState.CANCELLED

        assert problems == []
        assert external == []
        page.close()


def test_without_a_token_the_page_asks_for_one(browser: Any) -> None:
    from playwright.sync_api import expect

    app, _ = build_app()
    with serve(app.admin_asgi(token=TOKEN)) as base:
        page = browser.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{base}/")
        expect(page.locator("#login")).to_be_visible()
        page.locator("#login-token").fill(TOKEN)
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator('tr[data-queue="emails"] td[data-state="completed"]')).to_have_text("3")
        page.close()
