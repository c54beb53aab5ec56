"""A Vercel Python function: enqueue a job to SQS and report a job's status. Producer side only.

    POST /api/jobs            {"user_id": 1, "email": "ada@example.com"}  -> 202 {"id": ...}
    GET  /api/jobs?id=JOB_ID                                            -> 200 {status}

AWS credentials come from Vercel's OIDC federation: the request's ``x-vercel-oidc-token`` is exchanged
for a role's short-lived credentials (``AssumeRoleWithWebIdentity`` on ``AWS_ROLE_ARN``); no static keys.
See README.md beside this folder.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from jobqueue import InvalidPayload, JobQueue

_lock = threading.Lock()
_latest_token: dict[str, str] = {}
_app: JobQueue | None = None


def _assume_role() -> dict[str, str]:
    """Fresh credentials for AWS_ROLE_ARN from the latest OIDC token (botocore calls this again before they expire)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    token = _latest_token.get("value") or os.environ.get("VERCEL_OIDC_TOKEN")  # the env var is set in `vercel dev` and builds
    if not token:
        raise PermissionError("no Vercel OIDC token: enable OIDC federation in the project's settings")
    sts = boto3.client("sts", region_name=os.environ.get("AWS_REGION"), config=Config(signature_version=UNSIGNED))
    answer = sts.assume_role_with_web_identity(RoleArn=os.environ["AWS_ROLE_ARN"], RoleSessionName="vercel-jobqueue-producer",
                                               WebIdentityToken=token, DurationSeconds=900)
    credentials = answer["Credentials"]
    return {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"], "expiry_time": credentials["Expiration"].isoformat()}


def oidc_session() -> Any:
    """A boto3 session whose credentials are the assumed role's, refreshed from the latest request's token."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(_assume_role(), _assume_role, "vercel-oidc")
    return boto3.Session(botocore_session=core, region_name=os.environ.get("AWS_REGION"))


def get_app(token: str | None) -> JobQueue:
    """The producer app (built once per function instance), on SQS with the OIDC session."""
    global _app
    with _lock:
        if token:
            _latest_token["value"] = token
        if _app is None:
            from example_jobs import make_app
            from jobqueue_sqs import SQSBackend

            _app = make_app(SQSBackend(session=oidc_session()))
        return _app


def enqueue(body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    try:
        handle = get_app(token).registry["send_welcome_email"].enqueue(body)
    except InvalidPayload as exc:
        return 422, {"error": str(exc), "fields": exc.errors()}
    return 202, {"id": handle.id, "queue": handle.queue, "created": handle.created}


def status(job_id: str, token: str | None) -> tuple[int, dict[str, Any]]:
    found = get_app(token).get(job_id)
    if found is None:
        return 404, {"error": f"no job {job_id!r} (never enqueued, or no longer retained)"}
    return 200, found.model_dump(mode="json", include={"id", "name", "queue", "state", "progress", "attempt", "max_attempts", "result", "error"})


class handler(BaseHTTPRequestHandler):  # noqa: N801  (the name Vercel looks for)
    def _reply(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._reply(400, {"error": "the body is not JSON"})
        self._reply(*enqueue(body if isinstance(body, dict) else {}, self.headers.get("x-vercel-oidc-token")))

    def do_GET(self) -> None:
        job_id = (parse_qs(urlparse(self.path).query).get("id") or [""])[0]
        if not job_id:
            return self._reply(400, {"error": "pass ?id=JOB_ID"})
        self._reply(*status(job_id, self.headers.get("x-vercel-oidc-token")))

    def log_message(self, format: str, *args: Any) -> None:  # quiet: Vercel logs requests itself
        pass
