"""How a ClickHouse store is read: the one setting that chooses spans or request rows.

Light on purpose: the CLI builds its flags from :data:`STORE_READ_SETTINGS` before anything
heavy is imported. :func:`infermeter.analytics.open` applies it (``analytics/_session.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import Setting

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "ENV_REQUEST_ROWS_AFTER",
    "STORE_READ_SETTINGS",
    "parse_request_rows_after",
    "reads_request_rows",
]

ENV_REQUEST_ROWS_AFTER: Final = "INFERMETER_REQUEST_ROWS_AFTER"


def parse_request_rows_after(raw: str) -> str:
    """``"1d"``, ``"6h"``, ``"2w"`` (a window size: longer windows read request rows),
    ``"0"`` (always request rows) or ``"never"`` (always spans); returned normalized."""
    from infermeter.analytics.query._buckets import parse_bucket

    text = raw.strip().lower()
    if text not in {"0", "never"}:
        parse_bucket(text)  # raises ValueError naming the expected form
    return text


STORE_READ_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        name="request_rows_after",
        env=ENV_REQUEST_ROWS_AFTER,
        default="1d",
        parse=parse_request_rows_after,
        help="on a ClickHouse store, windows longer than this (e.g. 6h, 1d, 2w; 0 = always, "
        "never = never) read request rows merged inside ClickHouse instead of every span",
    ),
)


def reads_request_rows(setting: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether a ClickHouse store's window ``[since, until)`` (None: open-ended, longer
    than any) is read as request rows under the ``request_rows_after`` value ``setting``."""
    from infermeter.analytics.query._buckets import parse_bucket

    if setting == "never":
        return False
    if setting == "0" or since is None or until is None:
        return True
    return until - since > parse_bucket(setting)
