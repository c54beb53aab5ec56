"""A throwaway moto server (SQS, DynamoDB, Scheduler...) on a free loopback port, with dummy credentials."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

#: moto's server with DynamoDB's writes made atomic (see the module)
LAUNCHER = "tests.sqs.moto_launch"
#: the same, with moto's SQS costing per request what SQS does instead of a pass over the queue (the size case only)
SIZED_LAUNCHER = "tests.sqs.moto_launch_sized"
#: the repository, from which the launchers are run as modules
ROOT = Path(__file__).resolve().parents[2]

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's server (``launcher``, a module) in a child process; :attr:`endpoint` once it answers."""

    def __init__(self, launcher: str = LAUNCHER) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **DUMMY_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", launcher, "-H", "127.0.0.1", "-p", str(self.port)], cwd=ROOT,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start on {self.endpoint}") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        """The server's user + system CPU seconds so far (from Linux's /proc; None where there is none)."""
        stat = Path(f"/proc/{self.process.pid}/stat")
        if not stat.exists():
            return None
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name: state is field 3, utime 14, stime 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self) -> None:
        request = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
