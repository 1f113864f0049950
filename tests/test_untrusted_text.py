"""Property: whatever Unicode a sender puts in tenant, model, endpoint and prompt version -
control characters, newlines, HTML, Markdown and rich markup, CSV formulas, Prometheus
escapes, template placeholders - every output stays inert text in its format.

The text goes through the real collector (OTLP/HTTP, one collector for the whole test)
into the store, then into each output: the HTML report (page structure and plotly labels),
the Markdown report (CommonMark tokens), the report's CSV files and ``metrics --format
csv`` (no formula cell), the terminal table (no control or bidi character, no markup
error), the ``/metrics`` exposition (parsed back by prometheus_client, bounded labels) and
the alerts (one line each, webhook payloads round-trip as JSON). Public paths only: it
crosses every room. Examples are few and each
is one batch of labels, so the whole property costs a handful of store reads.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from infermeter.agent import semconv as sc
from infermeter.alerts import DEFAULT_RULES, evaluate, webhook_payloads
from infermeter.analytics import load_deployments, load_prices, request_table, weekly_report
from infermeter.analytics.report import render_html, render_markdown
from infermeter.collectors import Collector, open_reader
from infermeter.collectors.testing import otlp_request, otlp_span, send_otlp
from infermeter.dashboards import Catalog, ExporterConfig, MetricsExporter, RollupOptions
from markdown_it import MarkdownIt
from prometheus_client.parser import text_string_to_metric_families

from infermeter import main

pytestmark = pytest.mark.slow

FRAGMENTS = [
    "=",
    "+",
    "-",
    "@",
    '=HYPERLINK("http://e")',
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x1b]8;;http://e\x07",
    "\x9b",
    "\u2028",
    "\u202e",
    "<a href='http://e'>",
    "<b>",
    "<img src=x onerror=alert(1)>",
    "</script>",
    "&amp;",
    "`",
    "```",
    "# ",
    "- ",
    "1. ",
    "> ",
    "**",
    "_",
    "[x](http://e)",
    "|",
    "[/]",
    "[bold red]",
    "{runtime}",
    "{value|s}",
    "\\",
    '"',
    "'",
    'x="y"',
    "FIRING critical",
    "other",
    "ünï 中文 🙂",
]
# Text of fragments and arbitrary characters (no lone surrogates: not encodable in OTLP).
TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.characters(blacklist_categories=("Cs",))),
    min_size=1,
    max_size=8,
).map("".join)
LABELS = st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT), min_size=1, max_size=3)
CURATED = [
    ("[/]", "=cmd|' /C calc'!A0", "x\n# Heading\n- item <b>b</b>", "{runtime}\nFIRING x"),
    ("\x1b]8;;http://e\x07link\x1b]8;;\x07", "+1", "<a href='http://e'>e</a>", "`v1`"),
]
REQUESTS_PER_LABEL = 20  # the alert rules need 20 requests in the window
ALLOWED_TAGS = {
    *("html", "head", "meta", "link", "title", "style", "script", "body", "header", "main"),
    *("h1", "h2", "p", "div", "span", "table", "thead", "tbody", "tr", "th", "td"),
    *("ul", "li", "details", "summary", "code"),
}
_UNSAFE = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]"
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    store = tmp_path_factory.mktemp("untrusted") / "store.duckdb"
    with Collector(store, port=0) as running:
        yield running


def _send(collector: Collector, labels: list[tuple[str, str, str, str]], now: datetime) -> None:
    spans = []
    for tenant, model, endpoint, prompt in labels:
        for i in range(REQUESTS_PER_LABEL):
            start = now - timedelta(minutes=20, seconds=i)
            entry = otlp_span(
                "handler",
                start=start,
                duration_ms=2500,  # over the 1 ms SLO below: the latency alert fires
                kind=2,
                attributes={
                    sc.TENANT_ID: tenant,
                    sc.INFERMETER_ENDPOINT: endpoint,
                    sc.GEN_AI_PROMPT_VERSION: prompt,
                    sc.INFERMETER_RUNTIME: "serverless",
                },
            )
            spans += [
                entry,
                otlp_span(
                    "chat",
                    trace_id=entry.trace_id,
                    parent_span_id=entry.span_id,
                    start=start + timedelta(milliseconds=5),
                    duration_ms=100,
                    kind=3,
                    attributes={
                        sc.GEN_AI_REQUEST_MODEL: model,
                        sc.GEN_AI_PROVIDER_NAME: "openai",
                        sc.GEN_AI_USAGE_INPUT_TOKENS: 100,
                        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
                    },
                ),
            ]
    response = send_otlp(collector.url + "/v1/traces", otlp_request(spans))
    assert response.status == 200, response.body
    assert collector.flush(60)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _plotly_strings(page: str) -> list[str]:
    decoder = json.JSONDecoder()
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, list | dict):
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    for match in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        walk(data)
        walk(layout)
    return strings


def _check_html(page: str) -> None:
    parser = _Tags()
    parser.feed(page)
    assert set(parser.tags) <= ALLOWED_TAGS, set(parser.tags) - ALLOWED_TAGS
    strings = _plotly_strings(page)
    assert strings
    assert not [s for s in strings if "<" in s or ">" in s]


def _check_markdown(markdown: str) -> None:
    tokens: list[tuple[str, int]] = []
    for token in MarkdownIt("commonmark").parse(markdown):
        tokens.append((token.type, token.level))
        tokens.extend((child.type, token.level) for child in token.children or [])
    kinds = {kind for kind, _ in tokens}
    assert not kinds & {"html_inline", "html_block", "code_inline", "link_open", "image"}
    assert not kinds & {"ordered_list_open", "fence", "code_block", "hr", "softbreak"}
    assert [t for t in tokens if t[0] == "heading_open"] == [("heading_open", 0)]
    assert {level for kind, level in tokens if kind.endswith(("list_open", "quote_open"))} == {0}


def _check_csv(text: str, where: str) -> None:
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            # A leading sign is only allowed on a number (a spreadsheet reads it as one).
            assert not cell.startswith(_FORMULA) or _NUMBER.match(cell), (where, cell)


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(argv)) == 0
    return out.getvalue()


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(labels=LABELS)
@example(labels=CURATED)
def test_untrusted_labels_stay_text_in_every_output(
    collector: Collector, tmp_path_factory: pytest.TempPathFactory, labels: Any
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    _send(collector, labels, now)
    prices = load_prices()
    deployments = load_deployments(prices=prices, slo_ms=1.0)
    year, week, _ = now.isocalendar()
    con = open_reader(collector.paths.store)
    try:
        requests = request_table(
            con, con.table("spans"), prices=prices, deployments=deployments
        ).materialize()
        report = weekly_report(
            requests,
            week=f"{year}-W{week:02d}",
            prices=prices,
            deployments=deployments,
            generated_at=now,
        )
    finally:
        con.close()

    _check_html(render_html(report))
    _check_markdown(render_markdown(report))
    folder = tmp_path_factory.mktemp("csv")
    for path in report.write_csv(folder):
        _check_csv(Path(path).read_text(encoding="utf-8"), path.name)

    store = str(collector.paths.store)
    by = "tenant,model,endpoint,prompt_version"
    _check_csv(_cli("metrics", "--store", store, "--by", by, "--format", "csv"), "metrics")
    table = _cli("metrics", "--store", store, "--by", by)
    assert _UNSAFE.search(table) is None

    from prometheus_client import CollectorRegistry, generate_latest

    exporter = MetricsExporter(
        ExporterConfig(store=collector.paths.store, options=RollupOptions(), slo_ms=1.0)
    )
    assert exporter.refresh(now.replace(tzinfo=UTC)), exporter.last_error
    snapshot = exporter.snapshot
    assert snapshot is not None
    registry = CollectorRegistry()
    registry.register(exporter)  # type: ignore[arg-type]
    exposition = generate_latest(registry).decode()
    parsed = {
        tuple(sorted(sample.labels.items()))
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if family.name == "infermeter_requests"
    }
    assert parsed
    for labels_seen in parsed:
        assert all(len(value) <= 128 for _, value in labels_seen)  # the documented cut
    # Quotes, backslashes and newlines survive the exposition's escaping: what a scraper
    # reads back is exactly what the exporter computed.
    computed = {
        tuple(sorted(series_labels.items()))
        for series_labels, _ in snapshot.series(Catalog.REQUESTS_TOTAL)
    }
    assert parsed == computed

    alerts = evaluate(DEFAULT_RULES, snapshot, now=now.replace(tzinfo=UTC))
    assert alerts  # the 1 ms SLO is breached by every endpoint
    for alert in alerts:
        line = alert.line()
        assert _UNSAFE.search(line) is None and line.count("\n") == 0
    payloads = webhook_payloads(alerts)
    assert json.loads(json.dumps(payloads)) == payloads
