"""The worker recipes under infra/: required properties, one start command, grace periods, a live run.

Each recipe's worker command is read out of the recipe file itself (Dockerfile ENTRYPOINT/CMD, compose
command, systemd ExecStart, Kubernetes command/args), never copied here, so the recipes cannot drift apart.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
COMPOSE = INFRA / "docker" / "compose.yaml"
UNIT = INFRA / "systemd" / "jobqueue-worker@.service"
K8S = INFRA / "k8s"

DEFAULT_JOB_TIMEOUT = 300  # JOBQUEUE_DEFAULT_TIMEOUT's default
DEFAULT_WORKER_GRACE = 30  # `jobqueue worker --grace` default (JOBQUEUE_SHUTDOWN_GRACE)
WORKER_OPTIONS = {"--queues", "--processes", "--concurrency", "--grace"}
CONTAINER_RECIPES = ("docker", "compose", "k8s")
SYSTEMD_INSTANCE = "default"  # the queue set the template unit is started with in these tests


# --- small readers for each recipe format -------------------------------------------------------


def dockerfile_stages(path: Path = DOCKERFILE) -> list[dict[str, list[str]]]:
    """One {INSTRUCTION: [values]} per build stage (FROM included), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, also inside a continuation
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[dict[str, list[str]]] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append({})
        stages[-1].setdefault(instruction.upper(), []).append(rest.strip())
    return stages


def exec_form(value: str) -> list[str]:
    argv = json.loads(value)  # exec form only: shell form would not receive SIGTERM as PID 1
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), value
    return argv


def image_entrypoint_and_cmd() -> tuple[list[str], list[str]]:
    stage = dockerfile_stages()[-1]
    entrypoint = exec_form(stage["ENTRYPOINT"][-1]) if "ENTRYPOINT" in stage else []
    cmd = exec_form(stage["CMD"][-1]) if "CMD" in stage else []
    return entrypoint, cmd


def as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_worker() -> dict:
    return load_compose()["services"]["worker"]


def load_k8s() -> dict[str, dict]:
    """All manifests under infra/k8s, keyed by kind; a second of a kind is keyed ``Kind/name``."""
    docs: dict[str, dict] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                key = f"{doc['kind']}/{doc['metadata']['name']}"
                assert key not in docs, f"two {key} manifests"
                docs[key] = doc
                if doc["metadata"]["name"] != "jobqueue-dashboard":
                    docs.setdefault(doc["kind"], doc)
    return docs


def k8s_worker_container() -> dict:
    (container,) = load_k8s()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def load_unit(path: Path = UNIT) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def systemd_escape(text: str) -> str:
    return "".join(c if c.isalnum() or c in ":_." else f"\\x{ord(c):02x}" for c in text)


def seconds_systemd(span: str) -> float:
    """A systemd time span: '330', '5min 30s', '5.5min'."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
             "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
    span = span.strip()
    if re.fullmatch(r"\d+(\.\d+)?", span):
        return float(span)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", span)
    assert parts and "".join(f"{n}{u}" for n, u in parts) == span.replace(" ", ""), span
    return sum(float(n) * units[u] for n, u in parts)


def seconds_compose(duration: str | int) -> float:
    """A compose duration: '330s', '5m30s', '1h'."""
    if isinstance(duration, int):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in parts)


# --- the worker command of each recipe, as its runtime would build it -------------------------------


def docker_command() -> list[str]:
    entrypoint, cmd = image_entrypoint_and_cmd()
    return entrypoint + cmd


def compose_command() -> list[str]:
    worker = compose_worker()
    build = worker["build"]
    dockerfile = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == DOCKERFILE, "the compose worker should be built from infra/docker/Dockerfile"
    entrypoint, cmd = image_entrypoint_and_cmd()
    if "entrypoint" in worker:  # overriding the entrypoint also drops the image's CMD
        return as_argv(worker["entrypoint"]) + as_argv(worker.get("command"))
    return entrypoint + (as_argv(worker["command"]) if "command" in worker else cmd)


def systemd_command(instance: str = SYSTEMD_INSTANCE) -> list[str]:
    exec_start = load_unit()["Service"]["ExecStart"].lstrip("-@:+!")
    exec_start = exec_start.replace("%I", instance).replace("%i", systemd_escape(instance))
    assert "%" not in exec_start.replace("%%", ""), f"unhandled specifier in {exec_start!r}"
    return shlex.split(exec_start)


def k8s_command() -> list[str]:
    container = k8s_worker_container()
    entrypoint, cmd = image_entrypoint_and_cmd()
    if "command" in container:  # command replaces ENTRYPOINT and drops CMD
        return container["command"] + container.get("args", [])
    return entrypoint + container.get("args", cmd)


RECIPES = {
    "docker": docker_command,
    "compose": compose_command,
    "systemd": systemd_command,
    "k8s": k8s_command,
}


def worker_options(argv: list[str]) -> dict[str, str]:
    assert Path(argv[0]).name == "jobqueue" and argv[1] == "worker", argv
    options: dict[str, str] = {}
    rest = iter(argv[2:])
    for arg in rest:
        name, eq, value = arg.partition("=")
        assert name in WORKER_OPTIONS, f"unknown worker option {arg!r} in {argv}"
        options[name] = value if eq else next(rest)
    return options


def worker_grace(argv: list[str]) -> float:
    return float(worker_options(argv).get("--grace", DEFAULT_WORKER_GRACE))


def declared_grace() -> dict[str, float]:
    """How long each orchestrator waits after SIGTERM before it kills the worker."""
    spec = load_k8s()["Deployment"]["spec"]["template"]["spec"]
    return {
        "compose": seconds_compose(compose_worker()["stop_grace_period"]),
        "systemd": seconds_systemd(load_unit()["Service"]["TimeoutStopSec"]),
        "k8s": float(spec["terminationGracePeriodSeconds"]),
    }


# --- required properties of each recipe ----------------------------------------------------------


def test_dockerfile_is_a_small_non_root_worker_image():
    stages = dockerfile_stages()
    final = stages[-1]
    assert len(stages) >= 2, "multi-stage build"
    assert all(stage["FROM"][0].split()[0] == "python:3.11-slim" for stage in stages)
    assert final["USER"][-1].split(":")[0] not in ("root", "0")
    assert final["STOPSIGNAL"] == ["SIGTERM"]
    options, _, command = final["HEALTHCHECK"][-1].partition("CMD ")
    assert exec_form(command) == ["jobqueue", "health"]
    assert re.search(r"--timeout=\d+s", options)
    installs = [run for stage in stages for run in stage.get("RUN", []) if "pip install" in run]
    extras = {extra for run in installs for group in re.findall(r"\.\[([^\]]*)\]", run) for extra in group.split(",")}
    assert extras == {"redis"}, f"only the redis extra is installed, got {extras}"
    assert any("./backends/redis" in run for run in installs)
    assert (DOCKERFILE.parent / "Dockerfile.dockerignore").exists()


def test_compose_runs_authenticated_persistent_redis_and_workers():
    services = load_compose()["services"]
    redis = as_argv(services["redis"]["command"])
    assert redis[0] == "redis-server"
    assert redis[redis.index("--appendonly") + 1] == "yes"
    password = redis[redis.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD"), "the password comes from the env file, not the recipe"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"]), "AOF lives on a volume"
    env_example = (COMPOSE.parent / ".env.example").read_text()
    assert re.search(r"^REDIS_PASSWORD=", env_example, re.M)
    worker = services["worker"]
    assert "${REDIS_PASSWORD}" in worker["environment"]["REDIS_URL"]
    assert worker["environment"]["JOBQUEUE_BACKEND"] == "redis"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["deploy"]["replicas"] >= 1
    for optional in ("web:", "dashboard:"):
        assert f"# {optional}" in COMPOSE.read_text(), f"commented placeholder for {optional}"


def test_systemd_unit_is_a_hardened_template():
    service = load_unit()["Service"]
    assert UNIT.name.endswith("@.service")
    assert "%I" in service["ExecStart"] or "%i" in service["ExecStart"], "the instance is the queue set"
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"
    assert seconds_systemd(service["TimeoutStopSec"]) > DEFAULT_JOB_TIMEOUT
    assert service["NoNewPrivileges"] in ("yes", "true")
    assert service["ProtectSystem"] == "strict"
    assert service["User"] not in ("", "root", "0")
    assert service["EnvironmentFile"].lstrip("-").startswith("/")
    assert load_unit()["Install"]["WantedBy"] == "multi-user.target"


def test_k8s_worker_deployment_pdb_and_scaler():
    docs = load_k8s()
    deployment, pdb, scaler = docs["Deployment"], docs["PodDisruptionBudget"], docs["ScaledObject"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > DEFAULT_JOB_TIMEOUT
    assert pod["securityContext"]["runAsNonRoot"] is True
    image_user = dockerfile_stages()[-1]["USER"][-1].split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == image_user, "the image's numeric USER"
    container = k8s_worker_container()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == ["jobqueue", "health"], probe
    env = {item["name"]: item for item in container["env"]}
    assert env["JOBQUEUE_BACKEND"]["value"] == "redis"
    assert "secretKeyRef" in env["REDIS_URL"]["valueFrom"]

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (trigger,) = scaler["spec"]["triggers"]
    assert trigger["type"] == "metrics-api"
    queues = worker_options(k8s_command())["--queues"].split(",")
    meta = trigger["metadata"]
    assert any(meta["url"].endswith(f"/api/stats?queue={q}") and meta["valueLocation"] == f"queues.{q}.counts.waiting" for q in queues)
    dashboard = docs["Deployment/jobqueue-dashboard"]
    service = docs["Service/jobqueue-dashboard"]
    port = service["spec"]["ports"][0]["port"]
    assert meta["url"].startswith(f"http://{service['metadata']['name']}:{port}/")
    (web,) = dashboard["spec"]["template"]["spec"]["containers"]
    assert web["command"] == ["jobqueue", "dashboard"] and str(port) in web["args"]
    web_env = {item["name"]: item for item in web["env"]}
    auth = docs["TriggerAuthentication"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"] and meta["authMode"] == "bearer"
    token_secret = web_env["JOBQUEUE_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {token_secret}


# --- the recipes agree with each other -----------------------------------------------------------


def test_every_recipe_starts_the_same_worker_command():
    """The same options everywhere, but for ``--processes`` (containers scale by replicas, see below)."""
    commands = {name: read() for name, read in RECIPES.items()}
    options = {name: {k: v for k, v in worker_options(argv).items() if k != "--processes"} for name, argv in commands.items()}
    first = options["docker"]
    for name, opts in options.items():
        assert opts == first, f"{name} starts {commands[name]}, docker starts {commands['docker']}"


@pytest.mark.parametrize("recipe", CONTAINER_RECIPES)
def test_container_recipes_run_one_worker_process(recipe):
    """A container scales by replicas; without ``--processes`` a worker counts the host's cores when no CPU limit is set."""
    assert worker_options(RECIPES[recipe]()).get("--processes") == "1"


@pytest.mark.parametrize("recipe", ["compose", "systemd", "k8s"])
def test_declared_grace_exceeds_worker_grace(recipe):
    grace = worker_grace(RECIPES[recipe]())
    declared = declared_grace()[recipe]
    assert declared > grace, f"{recipe} kills the worker after {declared}s, but its --grace is {grace}s"
    assert declared > DEFAULT_JOB_TIMEOUT


def test_systemd_instance_names_a_queue_set():
    argv = systemd_command("email,reports")
    assert worker_options(argv)["--queues"] == "email,reports"
    if shutil.which("systemd-escape"):  # the helper escapes the way systemd does
        escaped = subprocess.run(["systemd-escape", "email,reports"], capture_output=True, text=True, check=True)
        assert escaped.stdout.strip() == systemd_escape("email,reports")


# --- the validators, as infra/check-infra.sh runs them -------------------------------------------


@pytest.mark.parametrize("check", ["hadolint", "compose", "systemd", "k8s"])
def test_check_infra(check):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(INFRA / "check-infra.sh"), "--no-install", check],
        capture_output=True, text=True, env=env, timeout=300,
    )
    if done.returncode == 77:
        pytest.skip(f"validator not installed: {done.stdout.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    if check == "k8s":
        assert re.search(r"^SKIP .*ScaledObject.*NOT validated", done.stdout, re.M), "CRDs are reported as skipped"


# --- the command, run for real -------------------------------------------------------------------

ENQUEUE = """
import importlib, json, os, sys
module, _, attr = os.environ["JOBQUEUE_APP"].partition(":")
jobs = importlib.import_module(module)
handle = jobs.ping.enqueue(marker=sys.argv[1])
print(json.dumps({"id": handle.id, "result": handle.result(timeout=10)}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_redis(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"redis-server on port {port} did not answer")


@pytest.fixture
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_redis(port, time.monotonic() + 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.needs_redis_worker
def test_recipe_command_processes_a_job_and_stops_on_sigterm(redis_url, tmp_path):
    if not hasattr(pytest.importorskip("jobqueue_redis"), "RedisBackend"):
        pytest.skip("the Redis worker (issue 3) has not landed yet")
    argv = k8s_command()  # the same in every recipe (test above); this one names no absolute path
    program = shutil.which(argv[0], path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert program, f"{argv[0]} is not installed next to {sys.executable}"
    env = {
        **os.environ,
        "JOBQUEUE_BACKEND": "redis",
        "REDIS_URL": redis_url,
        "JOBQUEUE_APP": "recipe_app:app",
        "JOBQUEUE_PREFIX": f"recipe-test-{os.getpid()}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
    }
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen([program, *argv[1:]], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        done = subprocess.run(
            [sys.executable, "-c", ENQUEUE, "recipe-marker"], env=env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["result"] == {"pong": "recipe-marker"}

        limit = min(declared_grace().values())
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=limit)
        assert code == 0
        assert time.monotonic() - started < limit
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.seek(0)
        print(log.read())
        log.close()
