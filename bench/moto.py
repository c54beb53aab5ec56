"""A moto server for the SQS measurements (``bench.sqs_bench``, ``bench.cold_first_event``), and its AWS environment.

The server is ``tests/sqs/moto_launch_sized.py``'s: moto's SQS as it is passes over every queued message on each
request, which made the 1,000-job measurement time out on a loaded machine (twice, in runs of record). That launcher
makes a request cost what it costs on SQS and answers every call as moto does (see its docstring); the figures
measured here are requests counted on the client side, so they do not depend on the server's speed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = "tests.sqs.moto_launch_sized"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aws_env(endpoint: str, prefix: str) -> dict[str, str]:
    """This process's environment, with dummy credentials, the moto endpoint and the bench app on the SQS backend."""
    return {
        **os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
        "JOBQUEUE_BACKEND": "sqs", "JOBQUEUE_APP": "bench.peers.sqs_app:app", "JOBQUEUE_SQS_PREFIX": prefix,
        "JOBQUEUE_JOBS_TABLE": f"{prefix}-jobs", "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
    }


def start_moto(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The moto server on ``port``, in a session of its own, once it answers; RuntimeError if it does not."""
    server = subprocess.Popen([sys.executable, "-m", LAUNCHER, "-H", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the moto server did not start") from None
            time.sleep(0.1)


def missing() -> str | None:
    """Why the SQS measurements cannot run here (the SQS backend or moto not installed), or None."""
    try:
        import jobqueue_sqs.handler  # noqa: F401
        import moto  # noqa: F401
    except ImportError as exc:
        return f"{exc} (make venv installs jobqueue-sqs and moto[server])"
    return None


def start_stack(stem: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """A moto server with the bench app's queue, DLQ and job table (``python -m jobqueue_sqs init``), and its environment."""
    port = free_port()
    env = aws_env(f"http://127.0.0.1:{port}", f"{stem}{uuid.uuid4().hex[:6]}")
    server = start_moto(port, env)
    init = subprocess.run([sys.executable, "-m", "jobqueue_sqs", "init"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    if init.returncode != 0:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        raise RuntimeError(f"jobqueue_sqs init failed: {init.stderr.strip()[-1000:]}")
    return server, env
