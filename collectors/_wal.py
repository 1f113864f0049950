"""The collector's write-ahead log: what was acknowledged survives ``kill -9``.

A request is answered 2xx only after its record is on disk (``fdatasync``). Records
carry a sequence number that grows across restarts; the store commits the highest
number it holds in the same transaction as the rows (``ingest_checkpoint``), so replay
after a crash re-inserts exactly the records the store does not have — no loss, no
duplicates.

Layout: ``<dir>/ID`` (this log's identity, so a fresh log directory never matches an
old checkpoint) and segment files ``<first seq, 20 digits>.wal``. A record is::

    magic b"IMW1" | u32 payload length | u64 seq | u32 crc32(seq + payload) | payload

Faults, and why none of them loses an acknowledged record or reuses a number:

- Each run appends to a *new* segment file (``O_EXCL``), never to an older one, so a
  torn record an earlier run left can never hide records written after it.
- A sequence number is never handed out twice: the next run starts past every number
  the newest segment can hold — when that segment is damaged, past the most records
  its size could hold (each record is at least a header long). Numbers may skip; only
  their order matters.
- Reading resynchronises after damage: a record that does not check out (torn, flipped
  bits, a foreign file) is skipped up to the next record that does, so one bad record
  never hides the ones after it. The damaged bytes are copied to ``<dir>/quarantine/``
  with a log line and counted (:attr:`WriteAheadLog.corrupt_regions`).
- A failed or short write is cut back off the file (``ftruncate``) before the error is
  raised; if that fails too, or an ``fdatasync`` fails, the next record goes to a new
  segment, and records written to the failed one are never reported durable (after a
  failed ``fsync`` Linux may mark the pages clean, so a second ``fsync`` proves nothing).
- A segment deleted under the log (its folder removed) fails :meth:`sync`: nothing is
  acknowledged into a file that no longer exists.
- Files in the directory that are not segments of this log (``99999999999999999999.wal``
  is past the largest sequence number the store can hold) are moved to the quarantine
  folder with a log line, never read as segments.

Concurrent writers share fsyncs (group commit): one ``fdatasync`` covers every record
written before it started.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["MAX_SEQ", "WriteAheadLog"]

_log = logging.getLogger("infermeter.collectors")

_MAGIC: Final = b"IMW1"
_HEADER: Final = struct.Struct("<4sIQI")
_SEQ: Final = struct.Struct("<Q")
_SUFFIX: Final = ".wal"
_SEGMENT_NAME: Final = re.compile(r"(\d{20})\.wal")
# The checkpoint column is a signed 64-bit BIGINT.
MAX_SEQ: Final = 2**63 - 1
QUARANTINE: Final = "quarantine"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _Record:
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Damage:
    start: int
    end: int
    torn_tail: bool  # the file ends inside a record: a write cut short by a crash


def _record_at(data: bytes, pos: int) -> tuple[int, bytes, int] | None:
    """The record starting at ``pos`` as ``(seq, payload, end)`` if it checks out."""
    if len(data) - pos < _HEADER.size:
        return None
    magic, length, seq, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    end = start + length
    if magic != _MAGIC or end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq))) != crc:
        return None
    return seq, payload, end


def _scan(data: bytes, low: int, high: int) -> Iterator[_Record | _Damage]:
    """Records (numbered ``low <= seq < high``, increasing) and damaged byte ranges of a
    segment's content, in file order."""
    pos = 0
    last = low - 1
    while pos < len(data):
        found = _record_at(data, pos)
        if found is not None and last < found[0] < high:
            seq, payload, pos = found
            last = seq
            yield _Record(seq, payload)
            continue
        # Resynchronise: the next offset where a record of this segment checks out.
        nxt = data.find(_MAGIC, pos + 1)
        while nxt != -1:
            candidate = _record_at(data, nxt)
            if candidate is not None and last < candidate[0] < high:
                break
            nxt = data.find(_MAGIC, nxt + 1)
        end = len(data) if nxt == -1 else nxt
        torn = nxt == -1 and _is_torn_tail(data, pos)
        yield _Damage(pos, end, torn)
        pos = end


def _is_torn_tail(data: bytes, pos: int) -> bool:
    """Whether the bytes from ``pos`` are the start of a record the file ends inside."""
    rest = len(data) - pos
    if rest < _HEADER.size:
        return _MAGIC.startswith(data[pos : pos + len(_MAGIC)])
    magic, length, _, _ = _HEADER.unpack_from(data, pos)
    return bool(magic == _MAGIC and _HEADER.size + length > rest)


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
        # Damage found so far (each region reported and quarantined once per process).
        self.corrupt_regions = 0
        self.quarantined_bytes = 0
        self.quarantined_files = 0
        self._reported: set[tuple[str, int]] = set()
        # The last write or sync failure, until a record written after it is durable.
        self.error: str | None = None
        self.errors = 0
        last = 0
        segments = self._segments()
        if segments:
            # Earlier segments only hold numbers below the newest segment's first one.
            first, path = segments[-1]
            data = path.read_bytes()
            last = first  # even an empty newest segment's name is never reused
            for item in _scan(data, first, MAX_SEQ + 1):
                if isinstance(item, _Record):
                    last = max(last, item.seq)
                else:
                    self._report(path, data, item)
                    # Whatever the damaged part held was numbered below this bound.
                    last = max(last, first + len(data) // _HEADER.size)
        if last >= MAX_SEQ:
            raise OSError(f"write-ahead log {directory} has run out of sequence numbers")
        # Every record of an earlier run has a number below this one.
        self.first_seq_this_run = last + 1
        self._next_seq = last + 1
        self._written_seq = last
        self._synced_seq = last
        self._poisoned_seq = 0  # records up to here went to a file whose sync failed
        # The newest first-sequence-number of a segment release() deleted: segments are
        # deleted oldest first, so every segment that starts at or below it is gone on
        # purpose (all its records are in the store).
        self._released_first = -1
        self._fd = -1
        self._active_first_seq = self._next_seq
        self._size = 0
        self._unsynced_fds: list[int] = []
        self._rotate_next = False
        self._closed = False
        with self._lock:
            self._open_segment()

    # -- writing ----------------------------------------------------------------------

    def _open_segment(self) -> None:
        path = self.directory / f"{self._next_seq:020d}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self._active_first_seq = self._next_seq
        self._size = 0
        self._rotate_next = False

    def _rotate(self) -> None:
        """Continue in a new segment (called holding ``_lock``)."""
        old = self._fd
        self._open_segment()
        if self._poisoned_seq >= self._written_seq:
            with contextlib.suppress(OSError):
                os.close(old)  # nothing durable can come of it any more
        else:
            self._unsynced_fds.append(old)  # the syncer still owns it until flushed

    def _failed(self, what: str, exc: OSError) -> OSError:
        """Record a write/sync failure (called holding ``_lock``) and the error to raise."""
        self.errors += 1
        message = f"{what} failed: {exc.strerror or exc}"
        if self.error is None:
            _log.error(
                "write-ahead log %s: %s; requests are refused (503) until it works again",
                self.directory,
                message,
            )
        self.error = message
        return OSError(exc.errno, f"write-ahead log {what} failed: {exc.strerror or exc}")

    def append(self, payload: Sequence[Buffer], then: Callable[[int], None] | None = None) -> int:
        """Write one record (``payload`` given as parts, written with one ``writev``)
        and return its sequence number — not yet durable, see :meth:`sync`.
        ``then(seq)`` runs under the log's lock, so callbacks see records in order.
        Raises ``OSError`` (nothing of the record left in the log) when the write fails."""
        views = [memoryview(part).cast("B") for part in payload]
        length = sum(view.nbytes for view in views)
        with self._lock:
            if self._closed:
                raise OSError("write-ahead log is closed")
            if self._rotate_next:
                try:
                    self._rotate()
                except OSError as exc:
                    raise self._failed("opening a new segment", exc) from None
            seq = self._next_seq
            if seq > MAX_SEQ:
                raise OSError("write-ahead log has run out of sequence numbers")
            crc = zlib.crc32(_SEQ.pack(seq))
            for view in views:
                crc = zlib.crc32(view, crc)
            header = _HEADER.pack(_MAGIC, length, seq, crc)
            # A number handed to a write is never handed out again, even if the write
            # fails half-way: its bytes might survive where the cut-back does not.
            self._next_seq = seq + 1
            try:
                written = self._write_record(header, views, len(header) + length)
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    self._rotate_next = True  # a partial record stays: write elsewhere
                raise self._failed("write", exc) from None
            self._written_seq = seq
            self._size += written
            if self._size >= self.segment_bytes:
                try:
                    self._rotate()
                except OSError as exc:  # the record is written; the next append retries
                    self._rotate_next = True
                    _log.warning("write-ahead log: cannot start a new segment yet: %s", exc)
            if then is not None:
                then(seq)
        return seq

    def advance_to(self, seq: int) -> bool:
        """Number this run's records from ``seq`` on (when higher than planned), as long
        as none has been written yet; False otherwise. The store's checkpoint is a floor
        the log cannot see by itself: if the newest segment lost records the store
        already has, their numbers must not be handed out again."""
        with self._lock:
            if self._closed or self._next_seq != self.first_seq_this_run:
                return False
            if seq <= self._next_seq:
                return True
            if seq > MAX_SEQ:
                raise OSError("write-ahead log has run out of sequence numbers")
            old_fd = self._fd
            old_path = self.directory / f"{self._active_first_seq:020d}{_SUFFIX}"
            self.first_seq_this_run = self._next_seq = seq
            self._written_seq = self._synced_seq = seq - 1
            self._open_segment()
            with contextlib.suppress(OSError):
                os.close(old_fd)
                old_path.unlink()  # empty: nothing was written to it
            return True

    def _write_record(self, header: bytes, views: list[memoryview], total: int) -> int:
        written = os.writev(self._fd, [header, *views])
        if written < total:
            # A short write (usually the disk filling up): write the rest, so the record
            # is whole or the real error is raised.
            rest = b"".join([header, *(bytes(view) for view in views)])[written:]
            while rest:
                step = os.write(self._fd, rest)
                if step <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                rest = rest[step:]
                written += step
        return written

    def sync(self, seq: int) -> None:
        """Return once record ``seq`` (and every earlier one) is on disk; raise
        ``OSError`` if that cannot be made sure of."""
        if self._synced_seq >= seq:
            return
        with self._sync_lock:
            if self._synced_seq >= seq:
                return  # a concurrent sync covered it
            with self._lock:
                if seq <= self._poisoned_seq:
                    raise OSError(f"write-ahead log sync failed earlier: {self.error}")
                target = self._written_seq
                old_fds, self._unsynced_fds = self._unsynced_fds, []
                fd = self._fd
                fd_first = self._active_first_seq
            try:
                for old in old_fds:
                    os.fdatasync(old)
                    os.close(old)
                    old_fds = old_fds[1:]
                os.fdatasync(fd)
                # A deleted file loses what it held, unless release() deleted it: an append
                # moved on to a new segment meanwhile and the store took every record of
                # this one (its records need no disk any more).
                if os.fstat(fd).st_nlink == 0 and not self._released(fd_first):
                    raise OSError(
                        2, "the segment file was deleted (was the store's folder removed?)"
                    )
            except OSError as exc:
                with self._lock:
                    for old in old_fds:
                        with contextlib.suppress(OSError):
                            os.close(old)
                    # Every record in the failed file(s), not only those this sync
                    # covered: none can be proven durable any more.
                    self._poisoned_seq = max(self._poisoned_seq, self._written_seq)
                    self._rotate_next = True
                    raise self._failed("sync", exc) from None
            with self._lock:
                self._synced_seq = target
                if self.error is not None and target > self._poisoned_seq:
                    _log.warning("write-ahead log %s works again", self.directory)
                    self.error = None

    # -- reading and trimming -----------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        """This log's segments by first sequence number; anything else named ``*.wal``
        is moved to the quarantine folder."""
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            match = _SEGMENT_NAME.fullmatch(path.name)
            first = int(match.group(1)) if match else 0
            if 1 <= first <= MAX_SEQ and path.is_file():
                found.append((first, path))
            else:
                self._quarantine_file(path)
        return sorted(found)

    def _quarantine_dir(self) -> Path:
        directory = self.directory / QUARANTINE
        directory.mkdir(exist_ok=True)
        return directory

    def _quarantine_file(self, path: Path) -> None:
        try:
            dest = self._quarantine_dir() / path.name
            path.replace(dest)
        except OSError as exc:
            _log.error("write-ahead log: cannot set aside stray file %s: %s", path, exc)
            return
        self.quarantined_files += 1
        _log.warning(
            "write-ahead log: %s is not a segment of this log (segments are named by a "
            "sequence number of 20 digits up to %d); moved to %s",
            path.name,
            MAX_SEQ,
            dest,
        )

    def _checked(self, path: Path, data: bytes, low: int, high: int) -> Iterator[_Record]:
        """The records of a segment; damaged ranges are reported and quarantined."""
        for item in _scan(data, low, high):
            if isinstance(item, _Record):
                yield item
            else:
                self._report(path, data, item)

    def _report(self, path: Path, data: bytes, damage: _Damage) -> None:
        key = (path.name, damage.start)
        if key in self._reported:
            return
        self._reported.add(key)
        size = damage.end - damage.start
        self.corrupt_regions += 1
        self.quarantined_bytes += size
        dest: Path | str = "(not kept)"
        try:
            dest = self._quarantine_dir() / f"{path.name}.{damage.start}.bin"
            dest.write_bytes(data[damage.start : damage.end])
        except OSError as exc:
            dest = f"(could not keep it: {exc})"
        if damage.torn_tail:
            _log.warning(
                "write-ahead log: %s ends in a record cut short by a crash (%d bytes at "
                "offset %d; it was never acknowledged); copied to %s",
                path.name,
                size,
                damage.start,
                dest,
            )
        else:
            _log.error(
                "write-ahead log: %s has %d corrupt bytes at offset %d (records there are "
                "lost; the records after them are read); copied to %s",
                path.name,
                size,
                damage.start,
                dest,
            )

    def replay(self, after: int, before: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Records with ``after < seq < before`` in order (``before`` defaults to the
        first record of this run: what earlier runs left behind)."""
        stop = self.first_seq_this_run if before is None else before
        segments = self._segments()
        for index, (first, path) in enumerate(segments):
            if first >= stop:
                break
            following = segments[index + 1][0] if index + 1 < len(segments) else MAX_SEQ + 1
            if following - 1 <= after:
                continue  # every record in it is already stored
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            for record in self._checked(path, data, first, following):
                if record.seq >= stop:
                    break
                if record.seq > after:
                    yield record.seq, record.payload

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
            with self._lock:
                self._released_first = max(self._released_first, first)
        return deleted

    def _released(self, first_seq: int) -> bool:
        with self._lock:
            return first_seq <= self._released_first

    def pending_bytes(self) -> int:
        """Bytes on disk in the log (including stored records not yet trimmed)."""
        total = 0
        for _, path in self._segments():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def close(self) -> None:
        """Flush and close; later appends raise ``OSError``. Raises ``OSError`` if the
        final flush fails (what it held may not be on disk)."""
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            failure: OSError | None = None
            for fd in [*self._unsynced_fds, self._fd]:
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    failure = exc
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._unsynced_fds = []
            if failure is not None:
                raise self._failed("final sync", failure)
            self._synced_seq = self._written_seq
