"""The library keeps its type hints honest: ``mypy --strict`` (pyproject's [tool.mypy]) passes on every package that
ships ``py.typed``, so users' own type checks can rely on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["jobqueue", "backends/redis/jobqueue_redis", "backends/sqs/jobqueue_sqs"]


def test_every_typed_package_ships_its_marker() -> None:
    assert all((ROOT / package / "py.typed").is_file() for package in PACKAGES)


def test_mypy_strict_passes() -> None:
    command = [sys.executable, "-m", "mypy", *PACKAGES]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
