"""Untrusted span text made inert in each output format.

Tenant, model, endpoint, prompt name and version come from spans anyone with a token can
send; every output that shows them passes them through the one helper of its format:

- :func:`printable`: control characters (C0, C1, DEL), line and paragraph separators and
  bidirectional overrides become visible escapes (``\\n``, ``\\x1b``, ``\\u202e``), so text
  never moves the cursor, opens an OSC 8 hyperlink, starts a new line or reorders what
  follows it. The base of the other helpers.
- :func:`terminal_text`: a ``rich.text.Text`` of the printable text (rich never parses
  markup in a ``Text``: a tenant named ``[/]`` is shown, not a closing tag).
- :func:`markdown_text`: every ASCII punctuation character CommonMark treats as syntax is
  backslash-escaped (CommonMark 0.31 section 2.4 allows escaping any of them), so no
  heading, list, link, emphasis, code span or raw HTML can start inside it.
- :func:`plotly_text`: ``<``, ``>`` and ``&`` as entities: plotly renders a subset of HTML
  tags (``<a href>``, ``<b>``, ``<br>``) in labels and titles, and decodes entities.
- :func:`csv_safe`: the OWASP CSV-injection rule for string cells: a cell starting with
  ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` so spreadsheets
  read it as text; numeric columns stay numbers.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import polars as pl
    from rich.text import Text

__all__ = ["csv_safe", "markdown_text", "plotly_text", "printable", "terminal_text"]

# Bidirectional formatting characters (Unicode TR9): they reorder the text that follows.
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in {"Cc", "Zl", "Zp"}


def _escape_char(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """``value`` as one line of text with every control character shown as an escape."""
    text = "" if value is None else str(value)
    if text.isprintable():  # fast path: no Cc/Zl/Zp/Cf at all
        return text
    return "".join(_escape_char(c) if _unsafe(c) else c for c in text)


def terminal_text(value: Any, style: str = "") -> Text:
    """A rich ``Text`` (never parsed as markup) of the printable ``value``."""
    from rich.text import Text

    return Text(printable(value), style=style)


# CommonMark syntax that can start anywhere in a line: emphasis, code spans, links,
# images, autolinks, raw HTML, entities, GFM tables and strikethrough.
# An underscore between two letters or digits can neither open nor close emphasis, so
# snake_case names stay readable.
_MARKDOWN_INLINE: Final = re.compile(r"([\\`*\[\]<>&!|~]|(?<![^\W_])_|_(?![^\W_]))")
# Syntax that only starts a block at the beginning of a line (a list item's content is a
# line too): headings, block quotes, list markers, setext underlines, thematic breaks.
_MARKDOWN_BLOCK: Final = re.compile(r"^([#>+=-]|\d{1,9}(?=[.)]))")


def markdown_text(value: Any) -> str:
    """``value`` as inert CommonMark inline text on one line (leading and trailing blanks
    dropped: four of them would start a code block)."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", printable(value).strip())
    match = _MARKDOWN_BLOCK.match(text)
    if match is None:
        return text
    end = match.end()
    if text[:end].isdigit():  # "1." / "1)": escape the delimiter after the number
        return text[:end] + "\\" + text[end:]
    return "\\" + text


def plotly_text(value: Any) -> str:
    """``value`` for a plotly label, name or title: its pseudo-HTML shown as text."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_FORMULA_START: Final = r"^[=+\-@\t\r]"


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every string cell that a spreadsheet would run as a formula
    prefixed with ``'``; other columns untouched."""
    import polars as pl

    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )
