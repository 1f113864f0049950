"""Bearer-token auth for the receiver: tokens, the tenant each one pins, and who may
ask for snapshots.

The token file is TOML (stdlib ``tomllib``, so the collector needs no extra parser)::

    [[tokens]]
    name = "acme-prod"        # what logs show; never the secret
    tenant = "acme"           # optional: every span this token writes gets tenant.id = acme
    sha256 = "9f86d0…"        # hex SHA-256 of the token: the file then holds no secret
    # or: token = "…"  (the secret itself)   or: env = "ACME_INGEST_TOKEN"

Tokens are compared by SHA-256 digest, so lookups take the same time whatever the
candidate, and the secrets are never logged or echoed in a response. A token without
``tenant`` may write any tenant (a trusted pipeline). Independently of the file, each
collector run makes a random control token (published in ``collector.json``, mode
0600) for local tools: snapshots for readers and imports routed through the collector.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infermeter.agent import ConfigurationError

__all__ = ["Principal", "TokenTable", "digest", "new_control_token"]

_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: a token's name, the tenant it pins, and whether it is the
    collector's own control token."""

    name: str
    tenant: str | None = None
    control: bool = False


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_control_token() -> str:
    return secrets.token_urlsafe(32)


class TokenTable:
    """Accepted bearer tokens (by digest) and the principal each one stands for."""

    def __init__(self, entries: Mapping[bytes, Principal], *, required: bool) -> None:
        self._entries = dict(entries)
        self.required = required

    @classmethod
    def open(cls, control_token: str) -> TokenTable:
        """No auth file: anyone may write; only the control token may snapshot."""
        return cls({digest(control_token): Principal("control", control=True)}, required=False)

    @classmethod
    def from_file(
        cls, path: Path, control_token: str, environ: Mapping[str, str] | None = None
    ) -> TokenTable:
        """Load the token file; raises ``ConfigurationError`` naming what is wrong."""
        env = os.environ if environ is None else environ
        try:
            with path.open("rb") as fh:
                document = tomllib.load(fh)
        except OSError as exc:
            raise ConfigurationError(f"auth file {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"auth file {path}: invalid TOML: {exc}") from None
        tokens = document.get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise ConfigurationError(f"auth file {path}: needs at least one [[tokens]] table")
        entries = {digest(control_token): Principal("control", control=True)}
        for index, entry in enumerate(tokens):
            where = f"auth file {path}: tokens[{index}]"
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{where}: must be a table")
            principal, token_digest = _entry(entry, where, env)
            if token_digest in entries:
                raise ConfigurationError(f"{where} ({principal.name}): duplicate token")
            entries[token_digest] = principal
        return cls(entries, required=True)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal for an ``Authorization`` header; ``None`` if it is not valid.

        Without an auth file a request with no (or an unknown) token is anonymous.
        """
        token = _bearer(authorization)
        if token is not None:
            found = self._entries.get(digest(token))
            if found is not None:
                return found
        if self.required:
            return None
        return Principal("anonymous")


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _entry(entry: dict[str, Any], where: str, env: Mapping[str, str]) -> tuple[Principal, bytes]:
    unknown = set(entry) - {"name", "tenant", "sha256", "token", "env"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{where}: needs a non-empty name")
    tenant = entry.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant.strip()):
        raise ConfigurationError(f"{where} ({name}): tenant must be a non-empty string")
    given = [key for key in ("sha256", "token", "env") if key in entry]
    if len(given) != 1:
        raise ConfigurationError(f"{where} ({name}): set exactly one of sha256, token, env")
    value = entry[given[0]]
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where} ({name}): {given[0]} must be a non-empty string")
    if given[0] == "sha256":
        hex_digest = value.strip().lower()
        if len(hex_digest) != 64 or not set(hex_digest) <= _HEX_DIGITS:
            raise ConfigurationError(f"{where} ({name}): sha256 must be 64 hex digits")
        token_digest = bytes.fromhex(hex_digest)
    elif given[0] == "env":
        secret = env.get(value.strip(), "")
        if not secret.strip():
            raise ConfigurationError(
                f"{where} ({name}): environment variable {value.strip()} is not set"
            )
        token_digest = digest(secret.strip())
    else:
        token_digest = digest(value.strip())
    return Principal(name.strip(), tenant.strip() if tenant else None), token_digest
