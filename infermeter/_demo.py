"""``infermeter demo``: the whole loop on the embedded default, with no servers to start.

1. start ``infermeter collect`` (a real process) on a DuckDB store in the output folder;
2. replay two weeks of a simulated AI service (``infermeter._demo_service``) in a few
   processes, each with its platform's environment, through the public decorator and the
   real OTLP/HTTP exporter;
3. stop the collector (it drains everything into the store), then run the analytics,
   recommendations, drift, weekly report, dashboards export and alert rules on that store;
4. print a summary and where to look next.

The demo is also the end-to-end test: ``tests/test_demo.py`` runs it and checks the
findings it must produce (``demo.json`` in the output folder holds them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

__all__ = ["register"]

DEFAULT_OUT: Final = Path("infermeter-demo")
# Replay processes per deployment: the big chat deployment is split in time so that the
# replay finishes in about a minute on two cores.
_PARTS: Final = {
    "chat-lambda": 2,
    "chat-k8s": 1,
    "ingest-lambda": 1,
    "ingest-k8s": 1,
    "embed-gpu": 1,
}
_COLLECTOR_START_TIMEOUT_S: Final = 60.0
# Marks an output folder as the demo's own, so that a second run may replace its store.
_MARKER: Final = ".infermeter-demo"
# Where Grafana reaches Prometheus in the exported provisioning (edit to your setup).
_PROMETHEUS_URL: Final = "http://localhost:9090"
_COLLECTOR_STOP_TIMEOUT_S: Final = 120.0

_DEPLOYMENTS_TOML: Final = """\
# Deployment facts infermeter cannot see in spans: the SLO you promised and what each
# runtime option costs. `infermeter recommend/report --deployments infermeter.toml` reads it.

[defaults]
slo_ms = 6000

[[workloads]]              # the RAG chat function on AWS Lambda (reranker + index in memory)
endpoint = "/v1/chat"
runtime = "serverless"
memory_mb = 3008

[[workloads]]              # the same service as a pod: async, 40 requests in flight per pod
endpoint = "/v1/chat"
runtime = "container"
vcpu = 0.25
memory_mb = 1024
concurrency = 40
min_instances = 1
instance_price_per_hour = 0.0126   # an eighth of an m7i.large node ($0.1008/h)

[[workloads]]              # webhook-driven document ingestion on AWS Lambda
endpoint = "/v1/ingest"
runtime = "serverless"
memory_mb = 1024
slo_ms = 2500

[[workloads]]              # the same pipeline as an always-on pod
endpoint = "/v1/ingest"
runtime = "container"
vcpu = 0.5
memory_mb = 1024
concurrency = 8
min_instances = 1
instance_price_per_hour = 0.0126   # an eighth of an m7i.large node
slo_ms = 2500

[[self_hosted]]            # the embedding model on one L4 pod (nightly re-embedding batch)
model = "bge-small-en-v1.5"
api_model = "text-embedding-3-small"   # what the batch would call instead
instance = "g6.xlarge"                 # 1x NVIDIA L4, on-demand
min_instances = 1
serverless_gpu = "gcp_cloud_run_l4"    # the scale-to-zero candidate
"""


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subcommands.add_parser(
        "demo",
        help="run the whole loop on a simulated AI service (no servers needed)",
        description=(
            "Start a collector on a DuckDB store in --out, replay two weeks of a simulated "
            "RAG chat service and embedding pipeline (serverless and container variants, "
            "several tenants, cold starts, provider 429s, a prompt-version rollout) through "
            "the real decorator and OTLP exporter, then write the weekly report, drift "
            "report, Grafana dashboards and alert rules, and print the findings."
        ),
    )
    demo.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})"
    )
    demo.add_argument(
        "--end",
        type=_aware_datetime,
        default=None,
        help="end of the simulated two weeks, ISO 8601 (default: the start "
        "of this ISO week, so that two whole weeks are simulated)",
    )
    demo.add_argument(
        "--store",
        default=None,
        help="run on this store instead of OUT/store.duckdb: a DuckDB file, or chdb:///DIR "
        "(the ClickHouse engine in-process, the OpenTelemetry Collector's otel_traces)",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="replace a store in --out that an earlier demo did not write",
    )
    demo.set_defaults(handler=_run)


def _aware_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Console:
    """Progress and findings on stderr/stdout (rich when a terminal is attached)."""

    def __post_init__(self) -> None:
        from rich.console import Console

        self.out = Console()
        if not self.out.is_terminal:
            # Piped or captured: rich would wrap at 80 columns and truncate the tables.
            self.out = Console(width=120)
        self.err = Console(stderr=True)

    def step(self, message: str) -> None:
        self.err.print(f"[bold cyan]•[/] {message}")


def _python_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from infermeter import main; raise SystemExit(main())", *args]


@contextmanager
def _collector(store: Path | str, log: IO[str]) -> Iterator[str]:
    """A real ``infermeter collect`` process on ``store``; yields its base URL."""
    from infermeter.collectors import StorePaths

    runtime = StorePaths.of(store).runtime
    process = subprocess.Popen(
        _python_cli(
            "collect",
            "--store",
            str(store),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-level",
            "warning",
        ),
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + _COLLECTOR_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise OSError(f"the collector exited with {process.returncode}; see {log.name}")
            if runtime.exists():
                try:
                    info = json.loads(runtime.read_text(encoding="utf-8"))
                    # A file left by a collector that was killed is not this one's.
                    if info.get("pid") == process.pid:
                        url = str(info["url"])
                        break
                except (ValueError, KeyError):
                    pass  # being written
            if time.monotonic() > deadline:
                raise OSError(
                    f"the collector did not start within "
                    f"{_COLLECTOR_START_TIMEOUT_S:.0f} s; see {log.name}"
                )
            time.sleep(0.05)
        yield url
        process.send_signal(signal.SIGTERM)
        if process.wait(timeout=_COLLECTOR_STOP_TIMEOUT_S) != 0:
            raise OSError(f"the collector stopped with {process.returncode}; see {log.name}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class _ReplayProcess:
    label: str
    process: subprocess.Popen[bytes]
    log: IO[str]
    progress: Path

    def counts(self) -> tuple[int, int]:
        """(requests replayed, requests to replay) as the process last reported them."""
        try:
            state = json.loads(self.progress.read_text(encoding="utf-8"))
            return int(state["done"]), int(state["total"])
        except (OSError, ValueError, KeyError):
            return 0, 0


def _replay(url: str, end: datetime, log_dir: Path, console: _Console) -> int:
    """Run every deployment's replay processes in parallel; returns requests replayed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from infermeter._demo_service import DEPLOYMENTS

    # Each replay sees only its platform's variables, as it would in production.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "INFERMETER_", "AWS_", "KUBERNETES_", "K_"))
    }
    replays: list[_ReplayProcess] = []
    try:
        for deployment in DEPLOYMENTS:
            parts = _PARTS[deployment.key]
            for part in range(parts):
                label = f"{deployment.key}-{part}"
                env = {
                    **inherited,
                    **deployment.env,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": url,
                    "OTEL_METRICS_EXPORTER": "none",
                }
                log = (log_dir / f"{label}.log").open("w", encoding="utf-8")
                progress_file = log_dir / f"{label}.progress.json"
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "infermeter._demo_service",
                        deployment.key,
                        end.isoformat(),
                        str(part),
                        str(parts),
                        str(progress_file),
                    ],
                    stdout=log,
                    stderr=log,
                    env=env,
                )
                replays.append(_ReplayProcess(label, process, log, progress_file))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console.err,
            transient=True,
        ) as progress:
            task = progress.add_task("replaying two weeks of traffic", total=None)
            while any(replay.process.poll() is None for replay in replays):
                counts = [replay.counts() for replay in replays]
                progress.update(
                    task,
                    completed=sum(done for done, _ in counts),
                    total=sum(total for _, total in counts) or None,
                )
                time.sleep(0.25)
        for replay in replays:
            if replay.process.returncode != 0:
                raise OSError(
                    f"replay {replay.label} failed ({replay.process.returncode}); "
                    f"see {replay.log.name}"
                )
        return sum(replay.counts()[1] for replay in replays)
    finally:
        for replay in replays:
            if replay.process.poll() is None:
                replay.process.kill()
                replay.process.wait()
            replay.log.close()


def _start_of_this_week(now: datetime) -> datetime:
    """Monday 00:00 UTC of ``now``'s ISO week: the simulated two weeks are the two complete
    ISO weeks before it, so the weekly report compares whole weeks."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=midnight.weekday())


def _report_week(end: datetime) -> str:
    """The ISO week to report on: the newest one with at least half a week of data."""
    year, week, _ = (end - timedelta(days=3.5)).isocalendar()
    return f"{year}-W{week:02d}"


def _analyse(store: Path | str, out: Path, end: datetime, console: _Console) -> dict[str, Any]:
    """Drift, weekly report and recommendations from the store; returns the findings."""

    from infermeter.analytics import open as open_analysis
    from infermeter.analytics import (
        open_results_for_writing,
        recommendations_to_json,
        workload_frame,
        write_drift_report,
        write_drift_results,
    )

    week = _report_week(end)
    with open_analysis(store, deployments=out / "infermeter.toml") as analysis:
        console.step(
            "drift: last week, and a new prompt version against the one it replaced "
            "(Evidently report)"
        )
        # The default reference, as `infermeter drift --store STORE` uses it with no flags.
        drift = write_drift_report(
            out / "drift.html",
            analysis.con,
            analysis.spans,
            analysis.embeddings,
            title="infermeter demo: drift after the prompt rollout",
        )
        with open_results_for_writing(store) as results:
            write_drift_results(results, drift)
        console.step(f"weekly report for {week} (HTML, Markdown, CSV)")
        report = analysis.weekly_report(week, drift=analysis.drift_results())
        report_dir = out / "report"
        report_dir.mkdir(exist_ok=True)
        report.write(report_dir)
        console.step(f"workload summary ({week})")
        # The summary shows the report's week, its economics and its recommendations: one
        # computation, so the terminal and the report cannot disagree. The workload frame
        # adds what was measured (memory, INIT), as the report's economics used.
        workloads = workload_frame(analysis.requests(report.start, report.end))
        quality = _quality(analysis, report, end, console)
    return {
        "week": week,
        "report": str(report_dir / f"infermeter-{week}.html"),
        "workloads": workloads.join(
            report.economics, on=("endpoint", "runtime"), how="left", suffix="_economics"
        ).to_dicts(),
        "recommendations": recommendations_to_json(report.recommendations)["recommendations"],
        # Per endpoint: every plan priced, the chosen one and the runner-up.
        "plans": [decision.to_dict() for decision in report.plans],
        "drift": drift.to_dicts(),
        "quality": quality,
    }


def _quality(analysis: Any, report: Any, end: datetime, console: _Console) -> dict[str, Any]:
    """Quality next to cost (from the report), retrieval overlap and the topic shift."""
    from infermeter.analytics.quality import retrievals, topk_overlap

    console.step("quality: evaluations and feedback next to cost, retrieval, topic shift")
    section = report.quality
    rollout = end - timedelta(days=4)  # the simulated prompt rollout (Scenario.ending)
    found = retrievals(analysis.spans).pl()
    overlap = topk_overlap(found, compare="prompt_version")
    shift = analysis.topic_shift((end - timedelta(days=14), rollout), (rollout, end), kind="query")
    return {
        "by_prompt_version": section.by_prompt_version.to_dicts() if section else [],
        "by_tenant_prompt_version": (
            section.by_tenant_prompt_version.to_dicts() if section else []
        ),
        "rollouts": section.rollouts.to_dicts() if section and section.rollouts is not None else [],
        "retrieval": section.retrieval.to_dicts() if section else [],
        "topk_overlap": overlap.to_dicts(),
        "topic_shift": {
            "shifted": shift.shifted,
            "summary": shift.summary(),
            "p_value": shift.p_value,
            "k": shift.k,
            "clusters": [
                {
                    "cluster": c.cluster,
                    "reference_share": c.reference_share,
                    "current_share": c.current_share,
                }
                for c in shift.clusters[:3]
            ],
        },
    }


def _provisioning(store: Path | str, out: Path, end: datetime, console: _Console) -> dict[str, Any]:
    """Grafana file provisioning, Prometheus alert rules, and the rules evaluated now."""
    from infermeter.agent.settings import resolve
    from infermeter.alerts import CHECK_SETTINGS, DEFAULT_RULES, check_store, write_prometheus_rules
    from infermeter.dashboards import export_dashboards

    console.step("Grafana dashboards (file provisioning) and alert rules")
    export_dashboards(out / "grafana", prometheus_url=_PROMETHEUS_URL)
    rules_file = write_prometheus_rules(out / "alerts" / "infermeter-rules.yml", DEFAULT_RULES)
    settings = resolve(
        CHECK_SETTINGS,
        {
            "store": str(store),
            "deployments": str(out / "infermeter.toml"),
        },
        environ={},
    )
    alerts = check_store(store, settings, now=end)
    return {
        "grafana": str(out / "grafana"),
        "alert_rules": str(rules_file),
        "alerts_firing": [
            {
                "name": alert.name,
                "severity": alert.severity,
                "labels": dict(alert.labels),
                "summary": alert.annotations.get("summary", ""),
            }
            for alert in alerts
        ],
    }


def _money(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"${value:,.2f}"


def _print_quality(quality: dict[str, Any], show: Any) -> None:
    from rich.table import Table

    table = Table(
        title="Quality next to cost per prompt version (the report's week)", title_justify="left"
    )
    for column in ("prompt", "tenant", "requests", "$/request", "good rate", "$/good answer"):
        table.add_column(column, justify="left" if column in {"prompt", "tenant"} else "right")

    def rate(value: object) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.1%}"

    def usd(value: object) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.5f}"

    for row in quality["by_prompt_version"]:
        if not row["judged_requests"]:
            continue  # endpoints nobody grades (the ingest pipeline)
        table.add_row(
            str(row["prompt_version"]),
            "all",
            f"{row['requests']:,}",
            usd(row["cost_per_request_usd"]),
            rate(row["good_rate"]),
            usd(row["cost_per_good_answer_usd"]),
        )
    for row in quality["by_tenant_prompt_version"]:
        if row["judged_requests"]:
            table.add_row(
                str(row["prompt_version"]),
                str(row["tenant"]),
                f"{row['requests']:,}",
                usd(row["cost_per_request_usd"]),
                rate(row["good_rate"]),
                usd(row["cost_per_good_answer_usd"]),
            )
    show.print(table)
    show.print("[bold]Rollouts[/] (evaluation scores, one-sided Mann-Whitney)")
    for row in quality["rollouts"]:
        if row["verdict"] in {"rollback", "cheaper_at_equal_quality"}:
            show.print(
                f"  • [bold]{row['verdict']}[/] tenant {row['tenant']}: {row['name']} "
                f"{row['baseline']} {row['baseline_mean']:.3f} → {row['candidate']} "
                f"{row['candidate_mean']:.3f} (p={row['p_value']:.2g}, n={row['baseline_n']}"
                f"/{row['candidate_n']})"
            )
    if not any(r["verdict"] == "rollback" for r in quality["rollouts"]):
        show.print("  • no rollout made answers significantly worse")
    for row in quality["retrieval"]:
        show.print(
            f"  • retrieval, prompt {row['prompt_version']}: hit rate {rate(row['hit_rate'])}"
        )
    for row in quality["topk_overlap"]:
        show.print(
            f"  • top-k overlap {row['baseline']} → {row['candidate']} over {row['queries']} "
            f"recurring questions: Jaccard {row['mean_jaccard']:.2f}, RBO {row['mean_rbo']:.2f}"
        )
    show.print(f"  • {quality['topic_shift']['summary']}")


def _print_summary(
    findings: dict[str, Any], out: Path, store: Path | str, seconds: float, console: _Console
) -> None:
    from rich.table import Table

    show = console.out
    show.rule("[bold]infermeter demo: what two weeks of a simulated AI service say")
    table = Table(
        title=f"Workloads in {findings['week']} (the last simulated week)", title_justify="left"
    )
    for column in (
        "endpoint",
        "runtime",
        "requests",
        "p95",
        "cold starts",
        "throttled",
        "$/request",
        "serverless $/mo",
        "containers $/mo",
    ):
        table.add_column(column, justify="left" if column in {"endpoint", "runtime"} else "right")
    for row in findings["workloads"]:
        table.add_row(
            str(row["endpoint"]),
            str(row["runtime"]),
            f"{row['requests']:,}",
            f"{row['p95_ms'] / 1000:.2f} s",
            f"{row['cold_start_rate']:.1%}",
            f"{row['throttle_rate']:.1%}",
            f"{row['cost_per_request_usd']:.5f}",
            _money(row.get("serverless_monthly_usd")),
            _money(row.get("container_monthly_usd")),
        )
    show.print(table)
    show.print("[bold]Recommendations[/] (projections of the measured load, list prices)")
    for rec in findings["recommendations"]:
        show.print(f"  • [bold]{rec['title']}[/] [dim]({rec['confidence_label']} confidence)[/]")
    show.print("[bold]Plans per endpoint[/] (the cheapest meeting the SLO, and the runner-up)")
    for decision in findings["plans"]:
        (chosen,) = [p for p in decision["plans"] if p["kind"] == decision["chosen"]]
        show.print(
            f"  • {decision['endpoint']}: {chosen['description']} "
            f"(${chosen['monthly_cost_usd']:,.2f}/month); {decision['why']}"
        )
    drifted = [row for row in findings["drift"] if row["verdict"] == "drift"]
    show.print("[bold]Drift[/] (last week; a new prompt version against the one it replaced)")
    for row in drifted:
        what = f"{row['feature']} embeddings" if row["kind"] == "embedding" else row["feature"]
        show.print(
            f"  • {row['model']} / prompt {row['prompt_version']}: {what} drifted "
            f"({row['method']} score {row['score']:.3f} ≥ {row['threshold']:.3f})"
        )
    if not drifted:
        show.print("  • no drift detected")
    _print_quality(findings["quality"], show)
    show.print("[bold]Alerts firing now[/] (infermeter alerts check)")
    for alert in findings["alerts_firing"]:
        show.print(f"  • {alert['severity']}: {alert['name']} - {alert['summary']}")
    if not findings["alerts_firing"]:
        show.print("  • none")
    show.print(f"\n[bold]Written to {out}/[/] in {seconds:.0f} s:")
    for path, what in (
        (findings["report"], "weekly unit-economics report (open it in a browser)"),
        (out / "report", "the same report as Markdown (Slack, e-mail) and CSV"),
        (out / "drift.html", "Evidently drift report"),
        (out / "grafana", "Grafana provisioning: data source + 5 dashboards"),
        (findings["alert_rules"], "Prometheus alerting rules"),
        (
            store,
            "the DuckDB store (query it with duckdb, or the commands below)"
            if isinstance(store, Path)
            else "the ClickHouse store (otel_traces and infermeter's views; the commands below)",
        ),
        (out / "demo.json", "these findings as JSON"),
    ):
        show.print(f"  {path}  [dim]{what}[/]")
    show.print("\n[bold]Next[/]")
    for line in (
        f"infermeter recommend --store {store} --deployments {out}/infermeter.toml --days 7",
        f"infermeter serve --store {store} --window-end newest   "
        "# Prometheus metrics on 127.0.0.1:9465",
        "infermeter dashboards push --grafana-url URL --token TOKEN "
        "--prometheus-url http://prometheus:9090",
        "infermeter alerts push --grafana-url URL --token TOKEN --webhook URL",
        "your service: @infermeter.observe(...) and `infermeter collect --store spans.duckdb`",
    ):
        show.print(f"  $ {line}")


def _run(args: argparse.Namespace) -> int:
    console = _Console()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    store: Path | str = out / "store.duckdb"
    marker = out / _MARKER
    if args.store is not None:
        store = _demo_store(args.store)
    if isinstance(store, str):  # chdb: the directory and its local folder
        _replace_chdb_store(store, args.force or marker.exists())
    elif store.exists() or store.with_name(store.name + ".infermeter").exists():
        # A store an earlier demo made is the demo's to replace (running the README's
        # command twice just works); anything else is somebody's data.
        if not (args.force or marker.exists()):
            raise ValueError(
                f"{store} exists and was not made by `infermeter demo`; "
                "pass --force to replace it or choose another --out"
            )
        _remove_store(store)
    marker.write_text("written by `infermeter demo`; its store may be replaced\n", encoding="utf-8")
    (out / "infermeter.toml").write_text(_DEPLOYMENTS_TOML, encoding="utf-8")
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    end = args.end or _start_of_this_week(datetime.now(UTC))
    started = time.monotonic()
    console.step(f"collector on {store} (logs in {logs})")
    with (logs / "collector.log").open("w", encoding="utf-8") as log, _collector(store, log) as url:
        console.step(f"collector listening on {url}; replaying the simulated service")
        requests = _replay(url, end, logs, console)
        console.step(
            f"{requests:,} requests replayed in {time.monotonic() - started:.0f} s; "
            "stopping the collector (it stores everything queued)"
        )
    console.step(f"store ready in {time.monotonic() - started:.0f} s")
    findings = _analyse(store, out, end, console)
    findings.update(_provisioning(store, out, end, console))
    findings["requests"] = requests
    (out / "demo.json").write_text(json.dumps(findings, indent=2, default=str), encoding="utf-8")
    _print_summary(findings, out, store, time.monotonic() - started, console)
    return 0


def _demo_store(text: str) -> Path | str:
    """``--store``: a DuckDB path, or a chdb URL (kept as text: it is not a file)."""
    from infermeter.collectors import parse_store

    location = parse_store(text)
    if location.engine == "duckdb":
        return Path(text)
    if location.engine != "chdb":
        raise ValueError(
            "the demo runs on a DuckDB file or chdb:///DIR; on a ClickHouse server run "
            "`infermeter clickhouse init` and point your collector at it instead"
        )
    return text


def _replace_chdb_store(store: str, replace: bool) -> None:
    """Remove a chdb store an earlier demo made (its directory and local folder)."""
    import shutil

    from infermeter.collectors import StorePaths, parse_store

    directory = parse_store(store).path
    assert directory is not None
    paths = StorePaths.of(store)
    existing = [p for p in (directory, paths.sidecar) if p.exists()]
    if existing and not replace:
        raise ValueError(
            f"{directory} exists and was not made by `infermeter demo`; "
            "pass --force to replace it or choose another --store"
        )
    for path in existing:
        shutil.rmtree(path)


def _remove_store(store: Path) -> None:
    """The store and everything kept beside it: DuckDB's WAL, the collector's folder and
    the drift results."""
    import shutil

    legacy_results = store.with_name(store.stem + ".results.duckdb")
    for path in (store, store.with_name(store.name + ".wal"), legacy_results):
        path.unlink(missing_ok=True)
    sidecar = store.with_name(store.name + ".infermeter")
    if sidecar.exists():
        shutil.rmtree(sidecar)
