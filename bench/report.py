"""Render a results JSON (from ``bench/run.py``) as ``BENCHMARKS.md`` and a PNG chart.

    bench/.venv-peers/bin/python -m bench.report bench/results/latest-full.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.peers import LIBRARIES, PEER_SETUPS, SETUPS

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _get(summary: dict[str, Any], kind: str, key: str, field: str) -> float | None:
    value = summary.get(kind, {}).get(key, {}).get(field)
    return value if isinstance(value, (int, float)) else None


def _best(summary: dict[str, Any], kind: str, field: str, keys: list[str], lowest: bool = False) -> tuple[str | None, float | None]:
    found = [(k, v) for k in keys if (v := _get(summary, kind, k, field)) is not None]
    if not found:
        return None, None
    return (min if lowest else max)(found, key=lambda kv: kv[1])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's speed targets as ratios of jobqueue to the best peer, measured in the same run."""
    s = results["summary"]
    peer_setups = [name for name in results["setups"] if name in PEER_SETUPS]
    peer_libs = sorted({SETUPS[name].library for name in peer_setups})
    rows: list[dict[str, Any]] = []

    def add(what: str, kind: str, field: str, keys: list[str], need: float, *, lowest: bool = False, jq_key: str = "jobqueue") -> None:
        peer, best = _best(s, kind, field, keys, lowest)
        mine = _get(s, kind, jq_key, field)
        ratio = None if mine is None or not best else (best / mine if lowest else mine / best)
        rows.append({
            "target": what, "jobqueue": mine, "peer": peer, "peer_value": best, "ratio": ratio, "need": need,
            "ok": None if ratio is None else ratio >= need - 1e-9,
        })

    add("processing, default launch (jobs/s)", "process_default", "rate", peer_setups, 2.0)
    c10_peers = [k for k in peer_setups if SETUPS[k].c10 is not None]
    add("processing, one process at concurrency 10 (jobs/s)", "process_c10", "rate", c10_peers, 3.0)
    add("enqueue, one call per job (jobs/s)", "enqueue", "rate", peer_libs, 1.0)
    add("bulk enqueue (jobs/s)", "bulk", "rate", [lib for lib in peer_libs if LIBRARIES[lib].bulk], 3.0)
    add("pick-up latency p50 (ms; best/jobqueue)", "latency", "p50_ms", peer_setups, 1.0, lowest=True)
    add("pick-up latency p99 (ms; best/jobqueue)", "latency", "p99_ms", peer_setups, 1.0, lowest=True)
    # redis-server CPU per job: enqueue one by one + processing in the default launch
    cpu = {}
    for name in results["setups"]:
        e = _get(s, "enqueue", SETUPS[name].library, "cpu_us_per_job")
        p = _get(s, "process_default", name, "cpu_us_per_job")
        if e is not None and p is not None:
            cpu[name] = e + p
    s.setdefault("per_job", {}).update({k: {"cpu_us_per_job": v} for k, v in cpu.items()})
    leanest = min(((k, v) for k, v in cpu.items() if k in PEER_SETUPS), key=lambda kv: kv[1], default=(None, None))
    mine = cpu.get("jobqueue")
    ratio = None if mine is None or not leanest[1] else mine / leanest[1]
    rows.append({"target": "redis-server CPU per job (µs; jobqueue/leanest, at most)", "jobqueue": mine, "peer": leanest[0],
                 "peer_value": leanest[1], "ratio": ratio, "need": 1.5, "ok": None if ratio is None else ratio <= 1.5,
                 "at_most": True})
    sqs = s.get("sqs", {}).get("jobqueue", {})
    send = (sqs.get("enqueue_bulk") or {}).get("send_message_per_job")
    rows.append({"target": "SQS SendMessage* requests per job, bulk (at most)", "jobqueue": send, "peer": None, "peer_value": None,
                 "ratio": send, "need": 0.1, "ok": None if send is None else send <= 0.1, "at_most": True, "unit": ""})
    ratio = _get(s, "cold_import", "jobqueue", "ratio")
    rows.append({"target": "Lambda handler cold import / `import boto3` (at most)", "jobqueue": _get(s, "cold_import", "jobqueue", "handler_ms"),
                 "peer": "boto3" if ratio is not None else None, "peer_value": _get(s, "cold_import", "jobqueue", "boto3_ms"),
                 "ratio": ratio, "need": 1.5, "ok": None if ratio is None else ratio <= 1.5, "at_most": True})
    sync = s.get("sync", {})
    mine = _get(s, "sync", "jobqueue-sync", "per_job_us")
    for case in ("celery-apply", "huey-immediate"):
        theirs = _get(s, "sync", case, "per_job_us")
        ratio = None if mine is None or theirs is None else theirs / mine
        rows.append({"target": f"sync backend vs {case} (µs per job; theirs/ours)", "jobqueue": mine, "peer": case if case in sync else None,
                     "peer_value": theirs, "ratio": ratio, "need": 1.0, "ok": None if ratio is None else ratio > 1.0})
    return rows


def render(results: dict[str, Any], *, markdown: Path | None, chart: Path | None) -> None:
    if chart is not None:
        try:
            draw_chart(results, chart)
        except Exception as exc:  # the report is still worth writing without its picture
            print(f"[bench] chart not drawn: {type(exc).__name__}: {exc}")
            chart = None
    if markdown is not None:
        markdown.write_text(to_markdown(results, chart))
        print(f"[bench] wrote {markdown}")


def to_markdown(results: dict[str, Any], chart: Path | None) -> str:
    s = results["summary"]
    m = results["machine"]
    setups = results.get("requested", results["setups"])
    libs = list(dict.fromkeys(SETUPS[name].library for name in setups))
    checks = results["checks"]
    out: list[str] = []
    w = out.append
    w("# Benchmarks\n")
    if results["n"] < 10_000 or results["rounds"] < 3 or results.get("quick") or len(results.get("requested", [])) < len(SETUPS):
        w(f"> **A partial or development run** (N={results['n']:,}, {results['rounds']} round(s)"
          f"{', quick' if results.get('quick') else ''}, {len(results.get('requested', results['setups']))} of {len(SETUPS)} setups): "
          "not the figures of record. `make bench` measures N=10,000, 3 rounds, every setup.\n")
    w("jobqueue against the Python job queues users would pick instead, measured in one run on one throwaway "
      "`redis-server` (loopback, no persistence), the database flushed before every measurement. Every figure is the "
      f"median of {results['rounds']} run(s); the libraries are interleaved and their order rotates each round. "
      "The workload is a job that increments a Redis counter.\n")
    w(f"- **Command:** `{results['command']}` (`make bench`, or `make bench-quick` for jobqueue and the two fastest peers)")
    w(f"- **When:** {results['started']}, {results['duration_s'] / 60:.1f} minutes")
    w(f"- **N:** {results['n']:,} jobs per measurement; pick-up latency over {results['latency_jobs']:,} jobs paced 2 ms apart")
    w(f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}; Python {m['python']}; redis-server {m['redis_server']}")
    skipped = {lib: c.get("reason") for lib, c in checks.items() if not c.get("ok")}
    if skipped:
        w("- **Not measured:** " + "; ".join(f"{lib} — {reason}" for lib, reason in skipped.items()))
    w("")
    if chart is not None:
        try:
            rel = chart.resolve().relative_to(ROOT)
        except ValueError:
            rel = chart
        w(f"![jobqueue and its peers]({rel})\n")

    w("## Targets (ratios in this run)\n")
    w("| target | jobqueue | best peer | peer's figure | ratio | needed | met |")
    w("|---|---:|---|---:|---:|---:|:---:|")
    for row in targets(results):
        unit = row.get("unit", "x")
        need = f"≤ {row['need']}{unit}" if row.get("at_most") else f"≥ {row['need']}{unit}"
        met = "–" if row["ok"] is None else ("yes" if row["ok"] else "**no**")
        digits = 3 if "latency" in row["target"] else 1  # sub-millisecond figures: one decimal would hide the gap
        w(f"| {row['target']} | {_fmt(row['jobqueue'], digits)} | {row['peer'] or '–'} | {_fmt(row['peer_value'], digits)} | "
          f"{_fmt(row['ratio'], 2)} | {need} | {met} |")
    w("")
    analysis = BENCH_DIR / "ANALYSIS.md"
    if analysis.exists():  # written by hand: where the time goes, what a missed target would need
        w(analysis.read_text(encoding="utf-8").rstrip() + "\n")

    w("## Enqueue\n")
    w("One producer process. *One by one*: one call per job, awaited before the next. *Bulk*: the library's bulk API, "
      "1,000 jobs per call. Redis commands and server CPU per job are for the one-by-one run.\n")
    w("| library | one by one (jobs/s) | bulk API | bulk (jobs/s) | Redis commands / job | redis-server CPU µs / job |")
    w("|---|---:|---|---:|---:|---:|")
    for lib in libs:
        w(f"| {lib} | {_fmt(_get(s, 'enqueue', lib, 'rate'))} | {LIBRARIES[lib].bulk or 'none'} | {_fmt(_get(s, 'bulk', lib, 'rate'))} | "
          f"{_fmt(_get(s, 'enqueue', lib, 'commands_per_job'), 1)} | {_fmt(_get(s, 'enqueue', lib, 'cpu_us_per_job'), 1)} |")
    w("")

    w("## Processing\n")
    w(f"{results['n']:,} jobs queued, then one worker launched as users launch it. *Launch → last*: jobs/s from starting the "
      "worker's command to the last job's completion (start-up included); *steady*: between the 10th and the 90th "
      "percentile of completions. *c10*: one process running 10 jobs at once, where the library can.\n")
    w("| setup | default launch | launch → last (jobs/s) | steady (jobs/s) | first job after (s) | c10 launch | c10 launch → last | c10 steady |")
    w("|---|---|---:|---:|---:|---|---:|---:|")
    for name in setups:
        st = SETUPS[name]
        c10 = s.get("process_c10", {}).get(name, {})
        if st.c10 is None:
            c10_desc = f"cannot ({st.note})" if st.note else "cannot"
        elif st.c10 == "default":
            c10_desc = "= default launch"
        else:
            c10_desc = st.c10_note
        w(f"| {name} | {st.default_note} | {_fmt(_get(s, 'process_default', name, 'rate'))} | "
          f"{_fmt(_get(s, 'process_default', name, 'steady_rate'))} | {_fmt(_get(s, 'process_default', name, 'first_job_s'), 2)} | {c10_desc} | {_fmt(c10.get('rate'))} | {_fmt(c10.get('steady_rate'))} |")
    w("")

    w("## Pick-up latency\n")
    w("An idle worker (default launch, warmed up by one job); jobs enqueued 2 ms apart; start of the job minus its enqueue time.\n")
    w("| setup | p50 (ms) | p99 (ms) | max (ms) |")
    w("|---|---:|---:|---:|")
    for name in setups:
        w(f"| {name} | {_fmt(_get(s, 'latency', name, 'p50_ms'), 2)} | {_fmt(_get(s, 'latency', name, 'p99_ms'), 2)} | "
          f"{_fmt(_get(s, 'latency', name, 'max_ms'), 1)} |")
    w("")

    w("## Redis cost per job\n")
    w("From `INFO commandstats` (commands run inside Lua scripts are counted, and so are `MULTI`/`EXEC`; the workload's own "
      "`INCR` and the harness's polling are left out) and redis-server's own CPU accounting (`INFO cpu`, user + sys). "
      "Per job = enqueue one by one + processing in the default launch.\n")
    w("| setup | commands / job: enqueue | processing | total | redis-server CPU µs / job | most frequent commands while processing |")
    w("|---|---:|---:|---:|---:|---|")
    for name in setups:
        lib = SETUPS[name].library
        e = _get(s, "enqueue", lib, "commands_per_job")
        p = _get(s, "process_default", name, "commands_per_job")
        ce = _get(s, "enqueue", lib, "cpu_us_per_job")
        cp = _get(s, "process_default", name, "cpu_us_per_job")
        by_name = s.get("process_default", {}).get(name, {}).get("commands_by_name", {})
        top = ", ".join(f"{cmd} {count / results['n']:.2g}" for cmd, count in sorted(by_name.items(), key=lambda kv: -kv[1])[:5])
        w(f"| {name} | {_fmt(e, 1)} | {_fmt(p, 1)} | {_fmt(None if e is None or p is None else e + p, 1)} | "
          f"{_fmt(None if ce is None or cp is None else ce + cp, 1)} | {top or '–'} |")
    w("")

    w("## jobqueue alone\n")
    sync = s.get("sync", {})
    if sync:
        w(f"**Inline execution** ({results['sync_jobs']:,} calls, in-process job bumping a counter; no broker):\n")
        w("| how | µs per job | jobs/s |")
        w("|---|---:|---:|")
        for case in ("jobqueue-sync", "celery-apply", "huey-immediate"):
            w(f"| {case} | {_fmt(_get(s, 'sync', case, 'per_job_us'), 1)} | {_fmt(_get(s, 'sync', case, 'rate'))} |")
        w("")
    mem = s.get("memory", {}).get("jobqueue")
    if mem and mem.get("runs"):
        w(f"**Worker memory**: RSS {mem['rss_before_kib'] / 1024:.1f} MiB after 1,000 jobs, {mem['rss_after_kib'] / 1024:.1f} MiB after "
          f"{mem['jobs']:,.0f} jobs (growth {mem['rss_growth_kib'] / 1024:.1f} MiB).\n")
    else:
        w("**Worker memory** before and after 100,000 jobs: not measured in this run (needs jobqueue's Redis worker).\n")
    cold = s.get("cold_import", {}).get("jobqueue", {})
    if cold.get("runs"):
        w(f"**Lambda cold import** in a fresh interpreter (median of {cold.get('rounds', 0):.0f}): `{cold['statement']}` "
          f"{cold['handler_ms']:.0f} ms, `import boto3` {cold['boto3_ms']:.0f} ms: ratio {cold['ratio']:.2f}.\n")
    else:
        w("**Lambda cold import** vs `import boto3`: not measured in this run"
          + (f" ({cold['errors'][0][:300]})" if cold.get("errors") else "") + ".\n")
    sqs = s.get("sqs", {}).get("jobqueue", {})
    if sqs.get("runs"):
        w(f"**SQS path** on a moto server, {sqs['n']:,.0f} jobs each way; AWS requests per job by operation (retries included):\n")
        w("| phase | requests per job |")
        w("|---|---|")
        for phase, label in (("enqueue_one", "enqueue, one call per job"), ("enqueue_bulk", "enqueue_many"),
                             ("worker", "local worker (event source mapping stand-in + handler)")):
            per_job = (sqs.get(phase) or {}).get("per_job", {})
            w(f"| {label} | " + (", ".join(f"{op} {v:.3g}" for op, v in per_job.items()) or "none") + " |")
        w("")
    else:
        w("**SQS requests per job** (moto server): not measured in this run"
          + (f" ({sqs['errors'][0][:300]})" if sqs.get("errors") else "") + ".\n")

    errors = [(kind, key, e) for kind, entries in s.items() for key, v in entries.items() if isinstance(v, dict)
              for e in v.get("errors", []) if not e.startswith("skipped")]
    if errors:
        w("## Failed runs\n")
        for kind, key, e in errors:
            w(f"- {kind} / {key}: {e.splitlines()[0][:300]}")
        w("")

    w("## Versions\n")
    w("| library | versions | virtualenv |")
    w("|---|---|---|")
    for lib, c in checks.items():
        versions = ", ".join(f"{k} {v}" for k, v in (c.get("versions") or {}).items())
        w(f"| {lib} | {versions or '–'} | {LIBRARIES[lib].venv} |")
    w("")
    w("Peers share `bench/.venv-peers`, pinned in `bench/requirements-peers.txt` to versions that install together on one "
      "redis-py; jobqueue's queue measurements run there too (installed from this checkout, so its jobs use the same "
      "redis-py as every peer's), its alone-measurements (sync, cold import, SQS) from the project's `.venv`. Each peer runs in its documented default production setup: "
      "see `bench/peers/` for the exact job, producer and worker command of each.\n")
    return "\n".join(out)


def draw_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["summary"]
    setups = results["setups"]
    libs = list(dict.fromkeys(SETUPS[name].library for name in setups))
    panels = [
        ("Processing, default launch (jobs/s)", [(n, _get(s, "process_default", n, "rate")) for n in setups]),
        ("Processing, one process at c10 (jobs/s)", [(n, _get(s, "process_c10", n, "rate")) for n in setups]),
        ("Enqueue one by one (jobs/s)", [(lib, _get(s, "enqueue", lib, "rate")) for lib in libs]),
        ("Bulk enqueue (jobs/s)", [(lib, _get(s, "bulk", lib, "rate")) for lib in libs]),
        ("Pick-up latency p99 (ms, lower is better)", [(n, _get(s, "latency", n, "p99_ms")) for n in setups]),
        ("redis-server CPU per job (µs, lower is better)",
         [(n, None if _get(s, "enqueue", SETUPS[n].library, "cpu_us_per_job") is None or _get(s, "process_default", n, "cpu_us_per_job") is None
           else _get(s, "enqueue", SETUPS[n].library, "cpu_us_per_job") + _get(s, "process_default", n, "cpu_us_per_job")) for n in setups]),
    ]
    fig, axes = plt.subplots(3, 2, figsize=(12, 11))
    for ax, (title, items) in zip(axes.flat, panels):
        items = [(k, v) for k, v in items if v is not None]
        ax.set_title(title, fontsize=10)
        if not items:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        lower_is_better = "lower is better" in title
        items.sort(key=lambda kv: kv[1], reverse=lower_is_better)  # the best at the top
        if "latency" in title:
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        names = [k for k, _ in items]
        values = [v for _, v in items]
        colors = ["#d62728" if k.startswith("jobqueue") else "#7f7f7f" for k in names]
        ax.barh(names, values, color=colors)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:,.0f}" if v >= 10 else f" {v:.2f}", va="center", fontsize=8)
        ax.tick_params(axis="both", labelsize=8)
        ax.margins(x=0.25)
    fig.suptitle(f"jobqueue vs peers — N={results['n']:,}, median of {results['rounds']}, {results['machine']['cores']} cores", fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("results", type=Path)
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--chart", type=Path, default=ROOT / "bench" / "benchmarks.png")
    args = parser.parse_args()
    render(json.loads(args.results.read_text()), markdown=args.markdown, chart=args.chart)


if __name__ == "__main__":
    main()
