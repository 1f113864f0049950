"""Helpers for the interop tests: replay recorded OTLP exports through the real collector,
read the request table back, and the fake OpenAI server (``fake_openai.py``)."""

from __future__ import annotations

import base64
import importlib.util
import json
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
from infermeter.analytics import Deployments, load_prices, request_table
from infermeter.collectors import Collector, open_reader

HERE = Path(__file__).parent
RECORDINGS = HERE / "recordings"

# List prices (USD per token) of the models the fake server answers as, from the
# providers' price pages: gpt-4o-mini $0.15 / $0.60 per 1M input / output tokens,
# text-embedding-3-small $0.02 per 1M.
GPT_4O_MINI_INPUT = 0.15 / 1e6
GPT_4O_MINI_OUTPUT = 0.60 / 1e6
EMBEDDING_3_SMALL_INPUT = 0.02 / 1e6


def fake_openai() -> ModuleType:
    """The stdlib-only fake server module (loaded by path: the recording venvs import it
    the same way, without infermeter or pytest)."""
    spec = importlib.util.spec_from_file_location("fake_openai", HERE / "fake_openai.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return document


def post(url: str, content_type: str, body: bytes, encoding: str | None = None) -> int:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        status: int = response.status
        return status


def replay(name: str, store: Path, **settings: Any) -> dict[str, Any]:
    """POST every trace, metrics and logs export of recording ``name`` to a real collector
    writing ``store``, exactly as the emitter sent it; returns the recording."""
    document = recording(name)
    with Collector(store, port=0, **settings) as collector:
        for export in document["exports"]:
            if export["path"] not in ("/v1/traces", "/v1/metrics", "/v1/logs"):
                continue
            status = post(
                collector.url + export["path"],
                export["content_type"],
                base64.b64decode(export["body_base64"]),
                export.get("content_encoding"),
            )
            assert status == 200, (export["path"], status)
    return document


def requests_of(store: Path) -> pl.DataFrame:
    """The request table of ``store`` (bundled list prices), oldest request first."""
    con = open_reader(store)
    try:
        prices = load_prices()
        table = request_table(
            con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
        )
        frame: pl.DataFrame = table.order("start_time").pl()
        return frame
    finally:
        con.close()
