"""Parametrises the conformance suite over every backend that has a harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobqueue.backends.base import Capability
from tests.conformance.harness import Harness, all_harnesses
from tests.conformance.jobs import Jobs, register


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness" in metafunc.fixturenames:
        names = sorted(all_harnesses())
        metafunc.parametrize("harness", names, indirect=True)


@pytest.fixture
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made = all_harnesses()[request.param](request)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def jobs(harness: Harness, request: pytest.FixtureRequest) -> Iterator[Jobs]:
    app = harness.make_app()
    registered = register(app)
    marker = request.node.get_closest_marker("requires")
    if marker is not None:
        missing = [cap for cap in marker.args if cap in harness.lacks]
        if missing:
            pytest.skip(f"{harness.name} declares it lacks {', '.join(str(c) for c in missing)}")
    try:
        yield registered
    finally:
        app.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): skip on a backend that declares it lacks one")


__all__ = ["Capability"]
