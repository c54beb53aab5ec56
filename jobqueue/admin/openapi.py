"""The admin API's OpenAPI 3.1 description, built from its pydantic models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from jobqueue.admin.models import (
    CleanRequest,
    HealthResponse,
    JobActionResult,
    JobList,
    JobView,
    Problem,
    QueueActionResult,
    StatsResponse,
)
from jobqueue.states import JobState

_MODELS = (StatsResponse, HealthResponse, JobView, JobList, JobActionResult, QueueActionResult, CleanRequest, Problem)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, model: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


_ERRORS = {
    "401": _answer("no valid bearer token (or the host app's auth said no)", "Problem"),
    "422": _answer("a bad query parameter or body", "Problem"),
}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_QUEUE_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_QUEUE_HINT = _query("queue", {"type": "string"}, "the job's queue (faster on some backends)")


@lru_cache(maxsize=8)
def _document(title: str, root_path: str) -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "serialization") for m in _MODELS], ref_template="#/components/schemas/{model}")
    states = {"type": "string", "enum": [s.value for s in JobState]}

    def job_action(verb: str, what: str) -> dict[str, Any]:
        return {"post": {
            "summary": what, "operationId": f"{verb}Job", "parameters": [_JOB_ID, _QUEUE_HINT],
            "responses": {"200": _answer("done", "JobActionResult"), "404": _answer("unknown job", "Problem"),
                          "409": _answer("not in a state this applies to", "Problem"), "401": _ERRORS["401"]},
        }}

    def queue_action(verb: str, what: str, body: bool = False) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": what, "operationId": verb, "parameters": [_QUEUE_NAME],
            "responses": {"200": _answer("done", "QueueActionResult"), "404": _answer("unknown queue", "Problem"), **_ERRORS},
        }
        if body:
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref("CleanRequest")}}}
        return {"post": operation}

    paths: dict[str, Any] = {
        "/api/stats": {"get": {
            "summary": "Per queue: counts per state, paused, throughput per minute, age of the oldest waiting job",
            "operationId": "getStats",
            "parameters": [_query("queue", {"type": "string"}, "only this queue"),
                           _query("minutes", {"type": "integer", "minimum": 1, "maximum": 120, "default": 15}, "throughput window")],
            "responses": {"200": _answer("the queues", "StatsResponse"), "404": _answer("unknown queue", "Problem"), **_ERRORS},
        }},
        "/api/health": {"get": {
            "summary": "Overall and per-queue health; 503 when unhealthy", "operationId": "getHealth",
            "responses": {"200": _answer("healthy or degraded", "HealthResponse"), "503": _answer("unhealthy", "HealthResponse"), "401": _ERRORS["401"]},
        }},
        "/api/jobs": {"get": {
            "summary": "A page of jobs in a state (of one queue, or of every queue), oldest first", "operationId": "listJobs",
            "parameters": [_query("queue", {"type": "string"}, "one queue (default: every queue)"),
                           _query("state", {**states, "default": "failed"}, "the jobs' state"),
                           _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
                           _query("cursor", {"type": "string"}, "next_cursor of the previous page")],
            "responses": {"200": _answer("a page", "JobList"), "404": _answer("unknown queue", "Problem"), **_ERRORS},
        }},
        "/api/jobs/{job_id}": {"get": {
            "summary": "One job: payload (secret fields redacted), progress, attempts, error and traceback, timeline",
            "operationId": "getJob", "parameters": [_JOB_ID, _QUEUE_HINT],
            "responses": {"200": _answer("the job", "JobView"), "404": _answer("unknown job", "Problem"), "401": _ERRORS["401"]},
        }},
        "/api/jobs/{job_id}/retry": job_action("retry", "Send a failed or cancelled job back to waiting with fresh attempts"),
        "/api/jobs/{job_id}/cancel": job_action("cancel", "Cancel a pending job, or ask an active one to stop"),
        "/api/queues/{name}/pause": queue_action("pauseQueue", "Start no more jobs of the queue"),
        "/api/queues/{name}/resume": queue_action("resumeQueue", "Resume the queue"),
        "/api/queues/{name}/retry-failed": queue_action("retryFailed", "Retry every failed job of the queue"),
        "/api/queues/{name}/clean": queue_action("cleanQueue", "Remove the queue's jobs in a state older than a duration", body=True),
        "/metrics": {"get": {
            "summary": "Prometheus text exposition", "operationId": "metrics",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}, "401": _ERRORS["401"]},
        }},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{title} admin API", "version": "1", "description": "Inspect and steer jobqueue jobs on any backend."},
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
        "components": {"schemas": schemas["$defs"], "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


def openapi_document(title: str, root_path: str = "") -> dict[str, Any]:
    """The description, with ``servers`` set to where the app is mounted."""
    return _document(title, root_path)
