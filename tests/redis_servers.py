"""Throw-away redis-server processes on free loopback ports, for tests (single node and a 3-node cluster)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def unavailable(reason: str) -> None:
    """Skip, or fail when ``CI`` is set: CI must not pass by skipping the Redis tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping; run infra/ensure-redis-server.sh)")
    pytest.skip(reason)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, bus: bool = False) -> int:
    """A free loopback port (and, with ``bus``, port + 10000 free too, for a cluster node's bus)."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        if _port_free(port) and (not bus or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free loopback port found")


def _ping(port: int, *, password: str | None = None, tls_ca: Path | None = None) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as raw:
            sock: socket.socket = raw
            if tls_ca is not None:
                sock = ssl.create_default_context(cafile=str(tls_ca)).wrap_socket(raw, server_hostname=HOST)
            if password is not None:
                sock.sendall(f"AUTH {password}\r\n".encode())
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server. ``stop()`` / ``start()`` again reuse the port (and, with ``persist``, the data).

    ``persist``: AOF on, fsync per ``appendfsync`` (``always`` or ``everysec``). ``password``: ``requirepass``.
    ``tls``: (cert, key, CA) files; the server then listens with TLS only and :attr:`url` is ``rediss://``.
    """

    def __init__(
        self, port: int | None = None, *, cluster: bool = False, persist: bool = False, appendfsync: str = "always",
        password: str | None = None, tls: tuple[Path, Path, Path] | None = None, extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port(bus=cluster)
        self.cluster = cluster
        self.persist = persist
        self.appendfsync = appendfsync
        self.password = password
        self.tls = tls
        self.extra_args = list(extra_args or [])
        self.dir = Path(tempfile.mkdtemp(prefix=f"jobqueue-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = redis_server_binary()
        if binary is None:
            unavailable("redis-server is not installed")
        args = [
            str(binary), "--port", "0" if self.tls else str(self.port), "--bind", HOST, "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.persist else "no", "--protected-mode", "no",
        ]
        if self.persist:
            args += ["--appendfsync", self.appendfsync]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            cert, key, ca = self.tls
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                     "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
        args += self.extra_args
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf", "--cluster-node-timeout", "2000"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                unavailable(f"redis-server exited at start with code {self.process.returncode}")
            if _ping(self.port, password=self.password, tls_ca=self.tls[2] if self.tls else None):
                return self
            time.sleep(0.05)
        self.stop()
        unavailable(f"redis-server did not answer on port {self.port} within {timeout:g}s")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last flush; what survives is what the AOF had on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisClusterNodes:
    """Three cluster-enabled redis-servers joined with ``redis-cli --cluster create`` (no replicas)."""

    def __init__(self) -> None:
        self.nodes = [RedisServer(cluster=True) for _ in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> RedisClusterNodes:
        cli = shutil.which("redis-cli")
        if cli is None:
            unavailable("redis-cli is not installed")
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        done = subprocess.run(
            [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode != 0:
            self.cleanup()
            unavailable(f"redis-cli --cluster create failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                subprocess.run([str(cli), "-p", str(n.port), "cluster", "info"], capture_output=True, text=True, timeout=5, check=False).stdout
                for n in self.nodes
            ]
            if all("cluster_state:ok" in s for s in states):
                return self
            time.sleep(0.2)
        self.cleanup()
        unavailable("the test Redis Cluster did not reach cluster_state:ok")
        return self

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
