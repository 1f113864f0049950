"""Read access to a store for report, serve, recommend, drift and alerts — without ever
blocking the collector.

DuckDB lets one process write a file, and while it does, other processes cannot even
open the file read-only ("Could not set lock on file"). So a reader never touches the
file a collector is writing. Instead:

- **No writer** (no collector, no import): the store file is opened read-only directly.
  Readers never write: a DuckDB file that is no infermeter store is refused, and so is
  a store an older infermeter wrote (``infermeter migrate`` upgrades it, as does starting
  a collector on it). If a collector starts meanwhile it is not blocked: it accepts
  and logs spans, and stores them once the reader closes.
- **A collector is running**: ``open_reader`` asks it (``POST /v1/snapshot`` with the
  control token from ``collector.json``) for a snapshot. The collector first stores
  every span it has acknowledged, then copies all tables inside one DuckDB transaction
  on a separate cursor (MVCC: ingest keeps committing during the copy) to a new file
  in ``<store>.infermeter/snapshots/``, renamed into place when complete. The reader
  opens that copy read-only: a consistent view that includes everything acknowledged
  before the call. A snapshot is reused while nothing new has been stored; the two
  newest are kept, so a reader still on the previous one is undisturbed.
- **An import is running** (or the collector does not answer): the latest snapshot is
  used if there is one, with a warning that it may be stale; otherwise a clear error.

The returned connection is an ordinary DuckDB connection; close it when done.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import memory_size_bytes
from infermeter.collectors._schema import SCHEMA_VERSION, apply_migrations, schema_version
from infermeter.collectors._sidecar import (
    StorePaths,
    WriterLock,
    current_holder,
    describe,
    read_runtime,
)
from infermeter.collectors._store_url import parse_store

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb

__all__ = [
    "migrate_store",
    "open_reader",
    "reader_config",
    "reader_memory_limit",
    "reader_threads",
    "request_snapshot",
]

_log = logging.getLogger("infermeter.collectors")


def open_reader(
    store: str | Path,
    *,
    timeout: float = 120.0,
    since: datetime | None = None,
    until: datetime | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store at ``store`` with the ``spans`` and
    ``embeddings`` tables (see the module docstring for how it never blocks ingest).

    ``memory_limit`` caps a DuckDB store's buffer pool (a DuckDB size such as ``1GiB``;
    default :func:`reader_memory_limit`): a long-running reader such as ``serve`` keeps
    less than a one-off report may use. Larger queries spill to disk beyond it.

    ``store`` is a DuckDB file path or a ClickHouse store URL (``clickhouse://…``,
    ``chdb:///dir``; see ``infermeter.collectors._store_url``): a ClickHouse store is
    read into an in-memory DuckDB connection with the same tables, holding the spans
    that start in ``[since, until)`` (widened by an hour each side; all when not given).
    A DuckDB store ignores ``since``/``until``: callers filter their window anyway.

    Raises ``FileNotFoundError`` when there is no store there and ``OSError`` when no
    consistent view can be had (``timeout`` bounds the wait for a snapshot).
    """
    location = parse_store(store)
    if location.engine != "duckdb":
        from infermeter.collectors._clickhouse_reader import open_clickhouse_reader

        return open_clickhouse_reader(location, since=since, until=until, memory_limit=memory_limit)
    paths = StorePaths.of(store)
    if not paths.store.exists():
        raise FileNotFoundError(f"no store at {paths.store} (create one with `infermeter collect`)")
    holder = current_holder(paths)
    limit = memory_limit or reader_memory_limit()
    if holder is None:
        return _open_live(paths, limit)
    if holder.get("kind") == "collector":
        runtime = read_runtime(paths)
        if runtime is not None:
            try:
                return _connect(request_snapshot(runtime, timeout), limit)
            except OSError as exc:
                return _stale_snapshot(
                    paths, f"the collector did not provide a snapshot: {exc}", limit
                )
    return _stale_snapshot(paths, f"the store is being written by {describe(holder)}", limit)


def request_snapshot(runtime: dict[str, Any], timeout: float = 120.0) -> Path:
    """Ask a running collector (its ``collector.json`` content) for a fresh snapshot."""
    url = str(runtime["url"])
    if not url.startswith("http://"):
        raise OSError(f"unexpected collector address {url!r} in collector.json")
    request = urllib.request.Request(  # noqa: S310 — scheme checked above
        url + "/v1/snapshot",
        data=b"",
        method="POST",
        headers={
            "Authorization": f"Bearer {runtime['control_token']}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            document = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise OSError(f"snapshot request failed with HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise OSError(f"snapshot request to {runtime['url']} failed: {exc}") from None
    return Path(document["path"])


# Buffer pool per DuckDB worker thread of a reader. Measured on the weekly report's
# metric tables (bench_analytics.py): each thread keeps its own hash-table partitions and
# sort runs in memory. While the request table built a list per request (not spillable),
# 2 threads in 512 MiB ran out of memory on 10M spans; since requests are priced span by
# span, 2 threads in 512 MiB run 10M and 30M spans within a 1 GiB process (peak RSS 790
# and 861 MiB) and a quarter faster than one.
_MEMORY_PER_THREAD: Final = 256 * 2**20


def reader_memory_limit(share: float = 0.5) -> str:
    """DuckDB's buffer pool for a reader: ``share`` (default half) of the memory this
    process may use (the cgroup's limit in a container, else the machine's RAM), not
    DuckDB's default of 80 % of the machine's RAM — which ignores containers and leaves
    nothing for the process's own frames. Larger queries spill to disk beyond it."""
    pool = _reader_memory_bytes() * 2 * share  # _reader_memory_bytes is the half
    return f"{max(int(pool), 256 * 2**20) // 2**20}MiB"


def reader_threads(memory_limit: int | None = None) -> int:
    """DuckDB worker threads for a reader with a buffer pool of ``memory_limit`` bytes
    (default: :func:`reader_memory_limit`'s): one per 256 MiB of pool, at least one, at
    most one per CPU — each thread holds its own share of a large aggregation or sort, so
    more threads than the pool can feed fail with "Out of Memory" instead of spilling."""
    import os

    pool = _reader_memory_bytes() if memory_limit is None else memory_limit
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, pool // _MEMORY_PER_THREAD))


def _reader_memory_bytes() -> int:
    limit = _physical_memory()
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text.isdigit():
            limit = min(limit, int(text)) if limit else int(text)
    except OSError:
        pass
    if not limit:
        return 2**30  # unknown machine: a size any machine that runs Python can give
    return max(limit // 2, 256 * 2**20)


def reader_config(
    memory_limit: str | None = None,
) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB settings of every reader connection: :func:`reader_memory_limit`,
    :func:`reader_threads` for it, and a spill directory of its own for what goes beyond
    it (large joins, sorts, the request tables analytics hold as temporary tables).

    The directory is a fresh name under the system temp directory (``TMPDIR``), not
    DuckDB's default ``<store>.tmp`` beside the store: readers write nothing next to a
    store or a collector's snapshots. DuckDB creates it at the first spill and removes it,
    with its files, when the connection closes.
    """
    import os
    import secrets
    import tempfile

    spill = Path(tempfile.gettempdir()) / f"infermeter-reader-{os.getpid()}-{secrets.token_hex(4)}"
    limit = memory_limit or reader_memory_limit()
    return {
        "memory_limit": limit,
        "threads": reader_threads(_size_bytes(limit)),
        "temp_directory": str(spill),
    }


def _size_bytes(size: str) -> int | None:
    """Bytes of a DuckDB size (``512MiB``, ``2GB``); None when it is not one (the reader
    then keeps the default thread count)."""
    try:
        return memory_size_bytes(size)
    except ValueError:
        return None


# DuckDB keeps one database instance per file in a process and refuses a second connection
# to it with other settings (each reader has its own spill directory): a reader of a file
# another reader of this process holds open shares that reader's settings.
_OPEN_CONFIGS: Final[dict[str, dict[str, str | bool | int | float | list[str]]]] = {}


def _physical_memory() -> int:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _connect(path: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    config = reader_config(memory_limit)
    key = str(path.resolve())
    try:
        try:
            con = duckdb.connect(str(path), read_only=True, config=config)
        except duckdb.ConnectionException:
            shared = _OPEN_CONFIGS.get(key)
            if shared is None or shared == config:
                raise
            con = duckdb.connect(str(path), read_only=True, config=shared)
        else:
            _OPEN_CONFIGS[key] = config
    except duckdb.Error as exc:  # locked, not a DuckDB file, unreadable…
        raise OSError(f"cannot open {path} for reading: {exc}") from None
    return con


def _open_live(paths: StorePaths, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """The store file itself, read-only. Readers never write: a file that is not an
    infermeter store, or one an older infermeter wrote, is refused with what to do."""
    con = _connect(paths.store, memory_limit)
    try:
        version = schema_version(con)
        tables = {
            str(row[0])
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        }
    except BaseException:
        con.close()
        raise
    if version >= SCHEMA_VERSION:
        return con
    con.close()
    if version == 0:
        raise OSError(
            f"{paths.store} is not an infermeter store"
            + (f" (its tables: {', '.join(sorted(tables)[:5])})" if tables else " (it is empty)")
            + "; nothing was changed"
        )
    raise OSError(
        f"{paths.store} was written by an older infermeter (schema {version}, this one reads "
        f"{SCHEMA_VERSION}); upgrade it once with `infermeter migrate --store {paths.store}` "
        "(readers never write)"
    )


def migrate_store(store: str | Path) -> tuple[int, int]:
    """Bring the store at ``store`` to the current schema as its one writer (refusing
    files that are no infermeter store); returns the versions before and after."""
    import duckdb
    from infermeter.collectors._store import precheck_store_file, refuse_foreign

    paths = StorePaths.of(store)
    if not paths.store.exists():
        raise FileNotFoundError(f"no store at {paths.store}")
    precheck_store_file(paths.store)  # a foreign file: refused, nothing created beside it
    with WriterLock(paths) as lock:
        lock.acquire({"kind": "migration"})
        try:
            writer = duckdb.connect(str(paths.store))
        except duckdb.Error as exc:
            raise OSError(f"cannot open {paths.store}: {exc}") from None
        try:
            refuse_foreign(writer, paths.store)
            if not schema_version(writer):
                raise ValueError(f"{paths.store} is not an infermeter store; nothing was changed")
            before = apply_migrations(writer)
        finally:
            writer.close()
    return before, SCHEMA_VERSION


def _stale_snapshot(paths: StorePaths, why: str, memory_limit: str) -> duckdb.DuckDBPyConnection:
    latest = paths.latest_snapshot()
    if latest is not None:
        _log.warning("%s; reading the latest snapshot, which may miss recent spans", why)
        return _connect(latest, memory_limit)
    raise OSError(f"cannot read {paths.store}: {why}; try again when it finishes")
