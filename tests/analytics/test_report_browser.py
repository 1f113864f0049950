"""The weekly report renders in a real headless Chromium (Debian's /usr/bin/chromium),
with every chart drawn, no console error, no failed request and no network access."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from infermeter.analytics import load_deployments, load_prices, request_table, weekly_report
from infermeter.analytics.report._render import CHART_IDS
from infermeter.analytics.testing._traffic import DEPLOYMENTS_TOML, synthetic_spans
from infermeter.collectors.testing import insert_spans, store_in_memory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


def _require_browser() -> Any:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "the playwright package (pip install 'infermeter[dev]')"
        sync_playwright = None
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {missing}")
        pytest.skip(f"needs {missing}")
    return sync_playwright


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    deployments_file = folder / "deployments.toml"
    deployments_file.write_text(DEPLOYMENTS_TOML)
    prices = load_prices()
    deployments = load_deployments(deployments_file, prices=prices)
    con = store_in_memory()
    insert_spans(con, synthetic_spans(datetime(2026, 11, 9), days=14, scale=0.05))
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    import polars as pl

    drift = pl.DataFrame(
        {
            "model": ["gpt-4o-mini", "gpt-4o-mini"],
            "prompt_version": ["v8", "v8"],
            "kind": ["embedding", "feature"],
            "feature": ["query", "output_tokens"],
            "method": ["model", "psi"],
            "score": [0.71, 0.05],
            "threshold": [0.55, 0.1],
            "drifted": [True, False],
            "verdict": ["drift", "no_drift"],
        }
    )
    report = weekly_report(
        requests, week="2026-W47", prices=prices, deployments=deployments, drift=drift
    )
    con.close()
    return report.write_html(folder / "report.html")


def test_report_renders_every_chart_without_console_errors(
    report_html: Path, tmp_path: Path
) -> None:
    sync_playwright = _require_browser()
    messages: list[tuple[str, str]] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
            page.on("requestfailed", lambda r: messages.append(("requestfailed", r.url)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report_html.as_uri())
            drawn_all = (
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(CHART_IDS)}"
            )
            page.wait_for_function(drawn_all, timeout=60_000)
            drawn = page.evaluate(
                "Array.from(document.querySelectorAll('.chart'))"
                ".filter(c => c.querySelector('.js-plotly-plot .main-svg')).map(c => c.id)"
            )
            bars = page.evaluate("document.querySelectorAll('#cost-by-tenant .bars path').length")
            lines = page.evaluate(
                "document.querySelectorAll('#p95-by-day .scatterlayer .trace').length"
            )
            # Every chart fits its card (a chart sized before the grid settled overflows).
            overflowing = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).filter(c => "
                "c.querySelector('.main-svg').getBoundingClientRect().width > c.clientWidth + 1)"
                ".map(c => c.id)"
            )
            title = page.title()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            context.close()
    assert sorted(drawn) == sorted(CHART_IDS)
    assert overflowing == []
    assert bars >= 8  # 4 tenants x 2 weeks
    assert lines >= 4  # one trace per endpoint
    assert title == "infermeter weekly report 2026-W47"
    errors = [m for m in messages if m[0] in {"error", "pageerror", "requestfailed"}]
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_hostile_labels_are_text_in_the_drawn_charts(tmp_path: Path) -> None:
    """plotly draws <a href>, <b>, <i>, <br> in labels as SVG links and styles: a tenant or
    endpoint named with them must show the characters, not become a link."""
    from datetime import timedelta

    from infermeter.collectors.testing import span_record

    sync_playwright = _require_browser()
    evil = "<a href='https://evil.example/'>click</a> <b>bold</b> <i>i</i>&amp;"
    week = datetime(2026, 11, 16)
    con = store_in_memory()
    insert_spans(
        con,
        [
            span_record(
                start=start + timedelta(hours=i),
                tenant=(evil, "acme")[i % 2],
                endpoint=(evil, "chat")[i % 2],
                runtime="unknown",
                duration_ms=100.0 * (i + 1),
            )
            for start in (week - timedelta(days=7), week)
            for i in range(4)
        ],
    )
    prices = load_prices()
    deployments = load_deployments(prices=prices)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    report = weekly_report(requests, week="2026-W47", prices=prices, deployments=deployments)
    con.close()
    page_path = report.write_html(tmp_path / "report.html")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = context.new_page()
            page.goto(page_path.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('#cost-by-tenant .main-svg').length > 0",
                timeout=60_000,
            )
            links = page.evaluate("document.querySelectorAll('.js-plotly-plot svg a').length")
            styled = page.evaluate(
                "Array.from(document.querySelectorAll('.js-plotly-plot tspan'))"
                ".filter(t => /bold|italic/.test(t.getAttribute('style') || '')).length"
            )
            ticks = page.evaluate(
                "Array.from(document.querySelectorAll('#cost-by-tenant .xtick text'))"
                ".map(t => t.textContent)"
            )
            legend = page.evaluate(
                "Array.from(document.querySelectorAll('#p95-by-day .legendtext'))"
                ".map(t => t.textContent)"
            )
        finally:
            context.close()
    assert links == 0
    assert styled == 0
    assert any("<a href='https://evil.example/'>click</a>" in t for t in ticks), ticks
    assert evil in legend, legend
