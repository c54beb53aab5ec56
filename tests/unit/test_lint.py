"""ruff over the whole tree with pyproject's [tool.ruff.lint] rules: no unused or undefined names, no syntax errors,
none of flake8-bugbear's likely bugs (a closure bound to a loop variable, an expression that does nothing...)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ["jobqueue", "backends", "functions", "examples", "bench", "tests"]


def test_ruff_finds_nothing() -> None:
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", *TREES]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "All checks passed" in result.stdout
