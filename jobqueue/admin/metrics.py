"""``GET /metrics``: the queues' gauges in the Prometheus text format (no client library needed)."""

from __future__ import annotations

from jobqueue.admin.models import HealthResponse, StatsResponse

_STATUS = ("healthy", "degraded", "unhealthy")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render_metrics(health: HealthResponse, stats: StatsResponse | None) -> str:
    """Gauges from one health report and one stats snapshot (whose throughput covers the last minutes)."""
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")

    backend = {"backend": health.backend}
    family("jobqueue_up", "1 if the broker answers.", [(backend, 1 if health.broker_reachable else 0)])
    family("jobqueue_health", "1 for the current overall health status.", [({**backend, "status": s}, 1 if health.status == s else 0) for s in _STATUS])
    if health.latency_ms is not None:
        family("jobqueue_broker_latency_seconds", "Round trip of the health check.", [(backend, health.latency_ms / 1000.0)])
    if stats is not None:
        queues = stats.queues.values()
        family("jobqueue_jobs", "Jobs per queue and state.", [({"queue": q.queue, "state": s.value}, n) for q in queues for s, n in q.counts.items()])
        family("jobqueue_queue_paused", "1 if the queue is paused.", [({"queue": q.queue}, 1 if q.paused else 0) for q in queues])
        family(
            "jobqueue_oldest_waiting_age_seconds", "How long the longest-waiting job has waited (0 if none waits).",
            [({"queue": q.queue}, q.oldest_waiting_age or 0.0) for q in queues],
        )
        family(
            "jobqueue_finished_recent", "Jobs finished in the last minutes (label window_minutes), per final state.",
            [
                ({"queue": q.queue, "state": state, "window_minutes": str(q.throughput.minutes)}, sum(counts))
                for q in queues
                for state, counts in (("completed", q.throughput.completed), ("failed", q.throughput.failed))
            ],
        )
    if health.queues:
        family(
            "jobqueue_queue_healthy", "1 if the queue reports healthy, 0 if degraded or unhealthy.",
            [({"queue": name, "status": q.status}, 1 if q.status == "healthy" else 0) for name, q in health.queues.items()],
        )
    return "\n".join(lines) + "\n"
