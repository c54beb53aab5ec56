from __future__ import annotations

from datetime import timedelta

import pytest

from jobqueue import Backoff, ConfigurationError, JobQueue, RateLimit, Retention, Settings
from jobqueue.options import parse_duration


def test_settings_read_from_the_given_environment_once() -> None:
    settings = Settings.from_env({"JOBQUEUE_BACKEND": "memory", "JOBQUEUE_DEFAULT_ATTEMPTS": "5", "JOBQUEUE_FALLBACK": "raise"})
    assert settings.backend == "memory" and settings.default_attempts == 5 and settings.fallback == "raise"
    assert settings.environ["JOBQUEUE_BACKEND"] == "memory"


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "sync" and settings.default_attempts == 3 and settings.prefix == "jobqueue"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JOBQUEUE_DEFAULT_ATTEMPTS", "abc"), ("JOBQUEUE_DEFAULT_ATTEMPTS", "0"), ("JOBQUEUE_FALLBACK", "maybe"),
     ("JOBQUEUE_DEFAULT_TIMEOUT", "-1"), ("JOBQUEUE_SHUTDOWN_GRACE", "soon")],
)
def test_a_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'colour'"):
        Settings.from_env({}, colour="blue")


def test_from_env_does_not_build_the_backend() -> None:
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": "redis"})
    assert app._backend is None and app.backend_name == "redis"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("24h", 86400.0), ("7d", 604800.0), ("minute", 60.0),
     (timedelta(minutes=2), 120.0), ("250ms", 0.25)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["soon", "-5", -1, "5 fortnights", True, None, float("inf")])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_rate_limits() -> None:
    assert RateLimit.parse("100/minute") == RateLimit(limit=100, period=60)
    assert RateLimit.parse("5/10s") == RateLimit(limit=5, period=10)
    for bad in ("100", "0/s", "x/minute", "10/never"):
        with pytest.raises(ConfigurationError):
            RateLimit.parse(bad)


def test_backoff_policies() -> None:
    assert [Backoff.exponential(2.0).delay_for(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert Backoff.exponential(1.0, max_delay=5).delay_for(10) == 5.0
    assert Backoff.fixed("3s").delay_for(7) == 3.0
    jittered = [Backoff.exponential(8.0, jitter=True).delay_for(1) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in jittered) and len(set(jittered)) > 1


def test_retention_shorthand() -> None:
    retention = Retention(completed=(1000, "24h"), failed=(10000, "7d"))
    assert retention.completed.max_count == 1000 and retention.completed.max_age == 86400
    assert retention.failed.max_age == 7 * 86400
    assert Retention(completed=5).completed.max_count == 5


def test_queue_options_are_checked() -> None:
    app = JobQueue(backend="memory")
    with pytest.raises(ConfigurationError, match="queue 'bad name!'"):
        app.queue("bad name!")
    with pytest.raises(ConfigurationError, match="rate limit"):
        app.queue("q", rate_limit="lots")


def test_the_default_timeout_can_be_turned_off() -> None:
    from jobqueue import Settings

    assert Settings.from_env({}).default_timeout == 300.0
    assert Settings.from_env({"JOBQUEUE_DEFAULT_TIMEOUT": "90"}).default_timeout == 90.0
    assert Settings.from_env({"JOBQUEUE_DEFAULT_TIMEOUT": "none"}).default_timeout is None
    assert Settings.from_env({"JOBQUEUE_DEFAULT_TIMEOUT": " Off "}).default_timeout is None
