"""Each script carries only the part of the shared Lua prelude it uses (jobqueue_redis.prelude)."""

from __future__ import annotations

import re

import pytest
from jobqueue_redis.prelude import lean, statements
from jobqueue_redis.scripts import Scripts, _load

PRELUDE = statements(_load("_lib"))
NAMES = [name for name, _ in PRELUDE]
LOCAL = re.compile(r"^local (?:function )?([A-Za-z_]\w*)", re.M)


def test_every_top_level_definition_of_the_prelude_is_a_statement() -> None:
    assert NAMES == LOCAL.findall(_load("_lib"))
    assert len(NAMES) == len(set(NAMES))


def test_a_script_gets_what_it_names_and_what_that_needs_in_prelude_order() -> None:
    kept = LOCAL.findall(lean(PRELUDE, "signal(1)\nreturn redis.call('ZCARD', WAITING)"))
    assert kept == ["base", "WAITING", "SIGNAL", "SIGNAL_MAX", "batch", "signal"]


def test_names_in_comments_pull_in_nothing() -> None:
    assert lean(PRELUDE, "-- see promote and end_batch\nreturn 1") == ""


def test_names_in_string_literals_pull_in_nothing() -> None:
    kept = LOCAL.findall(lean(PRELUDE, "return redis.call('LPUSH', SIGNAL, 'signal', \"batch\")"))
    assert kept == ["base", "SIGNAL"]  # the key's own text, base .. 'signal', does not pull in signal() either


@pytest.mark.parametrize("script", Scripts().all(), ids=lambda s: s.name)
def test_every_prelude_name_a_script_uses_is_defined_before_it(script) -> None:  # type: ignore[no-untyped-def]
    code = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "", re.sub(r"--[^\n]*", "", script.text))
    body_names = set(re.findall(r"[A-Za-z_]\w*", code))
    defined = set(LOCAL.findall(script.text))
    assert (body_names & set(NAMES)) <= defined


def test_the_enqueue_script_leaves_out_the_worker_s_machinery() -> None:
    defined = set(LOCAL.findall(Scripts().enqueue.text))
    assert {"promote", "flush_batch", "retain_all", "free_key"}.isdisjoint(defined)
    assert len(defined) < len(NAMES)


def test_scripts_are_read_through_importlib_resources_where_the_package_is_not_a_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jobqueue_redis.scripts as scripts

    on_disk = _load("idle")

    class Zipped(type(scripts.Path(__file__))):  # type: ignore[misc]
        def is_dir(self) -> bool:
            return False

    monkeypatch.setattr(scripts, "Path", Zipped)
    scripts._lua_dir.cache_clear()
    try:
        folder = scripts._lua_dir()
        assert not isinstance(folder, Zipped)  # importlib.resources' own traversable, not the path tried first
        assert _load("idle") == on_disk
    finally:
        scripts._lua_dir.cache_clear()
