"""Files that live next to a store, and the lock that makes one process its writer.

``<store>.infermeter/`` holds:

- ``writer.lock`` — an ``flock`` held by the one process writing the store (a collector
  or ``infermeter import``); the kernel drops it when that process dies, even on
  ``kill -9``, so a stale lock never blocks a restart. The file's text names the holder.
- ``collector.json`` — the running collector's address and control token (mode 0600):
  how ``open_reader``, ``import`` and ``infermeter demo`` find a collector started on
  port 0, and how they prove they may ask it for snapshots.
- ``wal/`` — the write-ahead log.
- ``snapshots/<seq>-<ns>.duckdb`` — copies made for readers. Each has its own name (a
  process that still reads an older one keeps reading it, and DuckDB's per-path
  instance cache can never hand a reader a stale copy); the two newest are kept.
- ``serve/<pid>-<n>/`` — a running ``serve``'s sealed request facts (Parquet; removed when
  it stops, and by the next ``serve`` when that process is gone).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "StoreBusyError",
    "StorePaths",
    "WriterLock",
    "current_holder",
    "describe",
    "read_runtime",
    "write_runtime",
]


class StoreBusyError(OSError):
    """Another process is already the writer of this store."""


@dataclass(frozen=True, slots=True)
class StorePaths:
    """Where a store's companion files are."""

    store: Path

    @classmethod
    def of(cls, store: str | os.PathLike[str]) -> StorePaths:
        """The paths of ``store``; a ClickHouse store's sidecar files are local too
        (see :meth:`StoreLocation.local_path`)."""
        from infermeter.collectors._store_url import parse_store

        return cls(parse_store(store).local_path())

    @property
    def sidecar(self) -> Path:
        return self.store.with_name(self.store.name + ".infermeter")

    @property
    def wal(self) -> Path:
        return self.sidecar / "wal"

    @property
    def lock(self) -> Path:
        return self.sidecar / "writer.lock"

    @property
    def runtime(self) -> Path:
        return self.sidecar / "collector.json"

    @property
    def snapshots(self) -> Path:
        return self.sidecar / "snapshots"

    @property
    def drift_results(self) -> Path:
        """Drift results (written by ``infermeter drift``, read by serve, alerts, report)."""
        return self.sidecar / "drift_results.duckdb"

    def latest_snapshot(self) -> Path | None:
        """The newest published snapshot, if any."""
        found = sorted(self.snapshots.glob("*.duckdb")) if self.snapshots.is_dir() else []
        return found[-1] if found else None


class WriterLock:
    """The store's exclusive writer lock (see the module docstring)."""

    def __init__(self, paths: StorePaths) -> None:
        self.paths = paths
        self._fd: int | None = None

    def acquire(self, holder: dict[str, Any]) -> None:
        """Take the lock or raise :class:`StoreBusyError` naming who has it."""
        self.paths.sidecar.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = describe(current_holder(self.paths))
            raise StoreBusyError(f"store {self.paths.store} is being written by {who}") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), **holder}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def current_holder(paths: StorePaths) -> dict[str, Any] | None:
    """Who holds the writer lock right now (``None`` when nobody does)."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 4096)
            try:
                info = json.loads(text)
            except ValueError:
                info = None
            return info if isinstance(info, dict) else {"kind": "unknown"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    kind = holder.get("kind", "process")
    what = {"collector": "a running `infermeter collect`", "import": "`infermeter import`"}
    return f"{what.get(kind, kind)} (pid {holder.get('pid', '?')})"


def write_runtime(paths: StorePaths, info: dict[str, Any]) -> None:
    """Publish the collector's address and control token (readable by the owner only)."""
    tmp = paths.runtime.with_name(paths.runtime.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    tmp.replace(paths.runtime)


def read_runtime(paths: StorePaths) -> dict[str, Any] | None:
    """The running collector's runtime file, if a collector holds the store."""
    holder = current_holder(paths)
    if not holder or holder.get("kind") != "collector":
        return None
    try:
        info = json.loads(paths.runtime.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
