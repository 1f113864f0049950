"""Build the bundled token price table from LiteLLM's model price map.

Run ``python -m infermeter.analytics.pricing.build SOURCE.json [--version V] [--taken DATE]``
to regenerate ``data/token_prices.json`` when a newer map is taken. Only what pricing
needs is kept (per-token USD prices for input, output, cache read, cache write and
reasoning where present, the LiteLLM provider and mode), so the package data stays small.
LiteLLM's map is MIT-licensed: its notice travels in the generated file and in
``data/NOTICE.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

__all__ = ["DATA_FILE", "FIELDS", "build_token_prices", "main"]

DATA_FILE: Final = Path(__file__).resolve().parent / "data" / "token_prices.json"

# Row layout of the generated table; prices are USD per token, None where LiteLLM has none.
FIELDS: Final = ("input", "output", "cache_read", "cache_write", "reasoning", "provider", "mode")

_SOURCE_KEYS: Final = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
)

LITELLM_NOTICE: Final = (
    "Token prices derived from LiteLLM's model_prices_and_context_window_backup.json "
    "(https://github.com/BerriAI/litellm), MIT License, Copyright (c) 2023 Berri AI. "
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    'software and associated documentation files (the "Software"), to deal in the Software '
    "without restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons "
    "to whom the Software is furnished to do so, subject to the following conditions: The above "
    "copyright notice and this permission notice shall be included in all copies or substantial "
    'portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, '
    "EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS "
    "FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT "
    "HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF "
    "CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE "
    "USE OR OTHER DEALINGS IN THE SOFTWARE."
)


def _price(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def build_token_prices(
    price_map: Mapping[str, Any], *, litellm_version: str, taken: str
) -> dict[str, Any]:
    """The bundled table: every entry of ``price_map`` priced per token, trimmed to FIELDS."""
    models: dict[str, list[Any]] = {}
    for name, entry in sorted(price_map.items()):
        if name == "sample_spec" or not isinstance(entry, Mapping):
            continue
        prices = [_price(entry, key) for key in _SOURCE_KEYS]
        if prices[0] is None and prices[1] is None:
            continue  # priced per image, second, character or query: not a token price
        provider = entry.get("litellm_provider")
        mode = entry.get("mode")
        models[name] = [
            *prices,
            provider if isinstance(provider, str) else None,
            mode if isinstance(mode, str) else None,
        ]
    return {
        "notice": LITELLM_NOTICE,
        "source": "litellm model_prices_and_context_window_backup.json",
        "litellm_version": litellm_version,
        "taken": taken,
        "unit": "USD per token",
        "fields": list(FIELDS),
        "models": models,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infermeter.analytics.pricing.build",
        description="Regenerate the bundled token price table from LiteLLM's price map.",
    )
    parser.add_argument("source", type=Path, help="LiteLLM's model price JSON")
    parser.add_argument("--version", default="1.110.2", help="litellm version the map came from")
    parser.add_argument("--taken", default=date.today().isoformat(), help="date it was taken")
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    price_map = json.loads(args.source.read_text(encoding="utf-8"))
    table = build_token_prices(price_map, litellm_version=args.version, taken=args.taken)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One model per line: small diffs when the map is refreshed.
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in table["models"].items()]
    header = {k: v for k, v in table.items() if k != "models"}
    text = (
        json.dumps(header, indent=2)[:-2]
        + ',\n  "models": {\n'
        + ",\n".join("  " + line for line in lines)
        + "\n  }\n}\n"
    )
    json.loads(text)  # the hand-joined layout must still be valid JSON
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(table['models'])} token prices to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
