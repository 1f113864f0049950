"""Which engine a store is on — decided here and nowhere else.

A store is named by one string wherever one is taken (``--store``, ``INFERMETER_STORE``,
``open_reader``):

- a path (``spans.duckdb``): the DuckDB store file, as it always was;
- ``clickhouse://user:password@host:8123/database`` (``clickhouses://`` for TLS): a
  ClickHouse server through clickhouse-connect (HTTP interface);
- ``chdb:///path/to/dir`` (optionally ``?database=name``): the same ClickHouse engine
  in-process (chdb), for tests, CI and one-machine trials. chdb runs one data directory
  per process.

A Windows drive letter (``C:\\x``) is a path, not a scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qs, unquote, urlparse

if TYPE_CHECKING:
    import os

    from clickhouse_connect.driver.client import Client

__all__ = ["Engine", "StoreLocation", "is_clickhouse_store", "parse_store"]

Engine = Literal["duckdb", "clickhouse", "chdb"]

_CLICKHOUSE_SCHEMES: Final = frozenset({"clickhouse", "clickhouses"})
_DEFAULT_DATABASE: Final = "default"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store name."""

    engine: Engine
    text: str  # as given (passwords included: never print it, use ``display``)
    path: Path | None = None  # the DuckDB file or the chdb directory
    database: str = _DEFAULT_DATABASE

    @property
    def display(self) -> str:
        """The store name without its password (for messages and logs)."""
        if self.engine != "clickhouse":
            return self.text
        parsed = urlparse(self.text)
        if parsed.password is None:
            return self.text
        netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@", 1)
        return parsed._replace(netloc=netloc).geturl()

    def local_path(self) -> Path:
        """Where this store's local companion files (``STORE.infermeter/``: drift results,
        a collector's log) are anchored: the DuckDB file, the chdb directory, or for a
        server ``./infermeter-HOST-DATABASE`` in the working directory."""
        if self.path is not None:
            return self.path.expanduser().resolve()
        host = urlparse(self.text).hostname or "localhost"
        return (Path.cwd() / f"infermeter-{host}-{self.database}").resolve()

    def client(self) -> Client:
        """A clickhouse-connect client on this store (ClickHouse engines only).

        Raises ``OSError`` with a one-line reason when the server or directory cannot be
        reached and ``ImportError`` naming the extra when clickhouse-connect is missing.
        """
        if self.engine == "duckdb":
            raise ValueError(f"{self.display} is a DuckDB store, not ClickHouse")
        try:
            import clickhouse_connect
        except ImportError:
            raise ImportError(
                "ClickHouse stores need the clickhouse extra: pip install 'infermeter[clickhouse]'"
            ) from None
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            if self.engine == "chdb":
                assert self.path is not None
                self.path.mkdir(parents=True, exist_ok=True)
                return clickhouse_connect.get_client(
                    dsn=f"chdb://{self.path}", database=self.database
                )
            parsed = urlparse(self.text)
            return clickhouse_connect.get_client(
                host=parsed.hostname or "localhost",
                port=parsed.port or (8443 if parsed.scheme == "clickhouses" else 8123),
                username=unquote(parsed.username or "default"),
                password=unquote(parsed.password or ""),
                database=self.database,
                secure=parsed.scheme == "clickhouses",
            )
        except ClickHouseError as exc:
            raise OSError(f"cannot open ClickHouse store {self.display}: {exc}") from None


def _database(path: str, query: str) -> str:
    named = parse_qs(query).get("database")
    if named:
        return named[0]
    name = unquote(path.strip("/"))
    return name or _DEFAULT_DATABASE


def parse_store(store: str | os.PathLike[str]) -> StoreLocation:
    """The engine and address of ``store`` (see the module docstring).

    Raises ``ValueError`` for a URL with a scheme no engine answers to.
    """
    text = str(store)
    scheme, sep, _ = text.partition("://")
    if not sep or len(scheme) < 2:
        return StoreLocation("duckdb", text, Path(text).expanduser())
    parsed = urlparse(text)
    kind = parsed.scheme.lower()
    if kind == "chdb":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"chdb store {text!r}: write chdb:///absolute/path/to/dir")
        if not parsed.path or parsed.path == "/":
            raise ValueError(f"chdb store {text!r} names no directory")
        database = parse_qs(parsed.query).get("database", [_DEFAULT_DATABASE])[0]
        return StoreLocation("chdb", text, Path(unquote(parsed.path)), database)
    if kind in _CLICKHOUSE_SCHEMES:
        if not parsed.hostname:
            raise ValueError(f"ClickHouse store {text!r} names no host")
        return StoreLocation("clickhouse", text, None, _database(parsed.path, parsed.query))
    if kind == "file":
        return StoreLocation("duckdb", text, Path(unquote(parsed.path)))
    raise ValueError(
        f"unknown store scheme {parsed.scheme!r} in {text!r}: use a DuckDB file path, "
        "clickhouse://user:password@host:8123/database or chdb:///path/to/dir"
    )


def is_clickhouse_store(store: str | os.PathLike[str]) -> bool:
    """Whether ``store`` names a ClickHouse engine (server or chdb)."""
    return parse_store(store).engine != "duckdb"
