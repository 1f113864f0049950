"""The collector's write-ahead log: what was acknowledged survives ``kill -9``.

A request is answered 2xx only after its record is on disk (``fdatasync``). Records
carry a sequence number that grows across restarts; the store commits the highest
number it holds in the same transaction as the rows (``ingest_checkpoint``), so replay
after a crash re-inserts exactly the records the store does not have — no loss, no
duplicates.

Layout: ``<dir>/ID`` (this log's identity, so a fresh log directory never matches an
old checkpoint) and segment files ``<first seq, 20 digits>.wal``. A record is::

    magic b"IMW1" | u32 payload length | u64 seq | u32 crc32(seq + payload) | payload

A write torn by a crash can only be the last record of a segment (each run appends to
a new segment); replay stops reading a segment at the first record that does not check
out. Concurrent writers share fsyncs (group commit): one ``fdatasync`` covers every
record written before it started.
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["WriteAheadLog"]

_MAGIC: Final = b"IMW1"
_HEADER: Final = struct.Struct("<4sIQI")
_SEQ: Final = struct.Struct("<Q")
_SUFFIX: Final = ".wal"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """An append-only, segmented, checksummed log in ``directory`` (created if missing)."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        id_file = directory / "ID"
        if not id_file.exists():
            tmp = directory / "ID.tmp"
            tmp.write_text(uuid.uuid4().hex + "\n", encoding="ascii")
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            tmp.replace(id_file)
            _fsync_directory(directory)
        self.wal_id = id_file.read_text(encoding="ascii").strip()
        self._lock = threading.Lock()  # record order, the active segment, counters
        self._sync_lock = threading.Lock()  # one fdatasync at a time (group commit)
        last = 0
        segments = self._segments()
        if segments:
            # Earlier segments only hold numbers below the newest segment's first one.
            first, path = segments[-1]
            last = max([first - 1, *(seq for seq, _ in self._read_segment(path))])
        # Every record of an earlier run has a number below this one.
        self.first_seq_this_run = last + 1
        self._next_seq = last + 1
        self._written_seq = last
        self._synced_seq = last
        self._fd = -1
        self._active_first_seq = self._next_seq
        self._size = 0
        self._unsynced_fds: list[int] = []
        self._closed = False
        with self._lock:
            self._open_segment()

    # -- writing ----------------------------------------------------------------------

    def _open_segment(self) -> None:
        self._active_first_seq = self._next_seq
        path = self.directory / f"{self._next_seq:020d}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o600)
        self._size = os.fstat(self._fd).st_size
        _fsync_directory(self.directory)

    def append(self, payload: Sequence[Buffer], then: Callable[[int], None] | None = None) -> int:
        """Write one record (``payload`` given as parts, written with one ``writev``)
        and return its sequence number — not yet durable, see :meth:`sync`.
        ``then(seq)`` runs under the log's lock, so callbacks see records in order."""
        views = [memoryview(part).cast("B") for part in payload]
        length = sum(view.nbytes for view in views)
        with self._lock:
            if self._closed:
                raise OSError("write-ahead log is closed")
            seq = self._next_seq
            crc = zlib.crc32(_SEQ.pack(seq))
            for view in views:
                crc = zlib.crc32(view, crc)
            header = _HEADER.pack(_MAGIC, length, seq, crc)
            written = os.writev(self._fd, [header, *views])
            if written != len(header) + length:
                raise OSError(f"short write to the write-ahead log ({written} bytes)")
            self._next_seq = seq + 1
            self._written_seq = seq
            self._size += written
            if self._size >= self.segment_bytes:
                # The syncer still owns the old descriptor until it is flushed.
                self._unsynced_fds.append(self._fd)
                self._open_segment()
            if then is not None:
                then(seq)
        return seq

    def sync(self, seq: int) -> None:
        """Return once record ``seq`` (and every earlier one) is on disk."""
        if self._synced_seq >= seq:
            return
        with self._sync_lock:
            if self._synced_seq >= seq:
                return  # a concurrent sync covered it
            with self._lock:
                target = self._written_seq
                old_fds, self._unsynced_fds = self._unsynced_fds, []
                fd = self._fd
            for old in old_fds:
                os.fdatasync(old)
                os.close(old)
            os.fdatasync(fd)
            self._synced_seq = target

    # -- reading and trimming -----------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            stem = path.name[: -len(_SUFFIX)]
            if stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    @staticmethod
    def _read_segment(path: Path) -> Iterator[tuple[int, bytes]]:
        with path.open("rb") as fh:
            while True:
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                magic, length, seq, crc = _HEADER.unpack(header)
                if magic != _MAGIC:
                    return
                payload = fh.read(length)
                if len(payload) != length or zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq))) != crc:
                    return  # a write torn by a crash: nothing after it in this segment
                yield seq, payload

    def replay(self, after: int, before: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Records with ``after < seq < before`` in order (``before`` defaults to the
        first record of this run: what earlier runs left behind)."""
        stop = self.first_seq_this_run if before is None else before
        segments = self._segments()
        for index, (first, path) in enumerate(segments):
            if first >= stop:
                break
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following - 1 <= after:
                continue  # every record in it is already stored
            for seq, payload in self._read_segment(path):
                if seq >= stop:
                    break
                if seq > after:
                    yield seq, payload

    def release(self, stored_seq: int) -> int:
        """Delete segments whose records are all stored (``seq <= stored_seq``); the
        active segment stays so sequence numbers keep growing. Returns files deleted."""
        with self._lock:
            active_first = self._active_first_seq
        deleted = 0
        segments = self._segments()
        for index, (first, path) in enumerate(segments):
            if first >= active_first or index + 1 >= len(segments):
                break
            if segments[index + 1][0] - 1 > stored_seq:
                break
            path.unlink(missing_ok=True)
            deleted += 1
        return deleted

    def pending_bytes(self) -> int:
        """Bytes on disk in the log (including stored records not yet trimmed)."""
        return sum(path.stat().st_size for _, path in self._segments() if path.exists())

    def close(self) -> None:
        """Flush and close; later appends raise ``OSError``."""
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in [*self._unsynced_fds, self._fd]:
                os.fdatasync(fd)
                os.close(fd)
            self._unsynced_fds = []
            self._synced_seq = self._written_seq
