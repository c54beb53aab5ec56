"""A module that would tell if anything imported it: the names hostile messages ask for point at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROBE = "jobqueue_hostile_probe"

#: job names a message might choose to get code run: module paths, entry-point forms, expressions
HOSTILE_NAMES = [
    "os:system", "os.system", "subprocess.run", "subprocess:Popen", "builtins.eval", "builtins:exec",
    "__import__('os').system('true')", "pickle.loads", f"{PROBE}:run", f"{PROBE}.run", PROBE,
]


class Probe:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    @property
    def imported(self) -> bool:
        return self.marker.exists() or PROBE in sys.modules


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    """``jobqueue_hostile_probe`` on sys.path (and PYTHONPATH): importing it leaves a marker file."""
    where = tmp_path / "probe"
    where.mkdir()
    marker = tmp_path / "probe-imported"
    (where / f"{PROBE}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n\ndef run(*a, **k):\n    return 'ran'\n")
    monkeypatch.syspath_prepend(str(where))
    monkeypatch.setenv("PYTHONPATH", f"{where}:{Path(__file__).resolve().parents[2]}")
    sys.modules.pop(PROBE, None)
    yield Probe(marker)
    sys.modules.pop(PROBE, None)
