"""Settings tables (public, shared by every room): one declaration feeds ``configure()``,
the CLI flags (``add_arguments``), user config files (``read_config_file``) and the docs.

Like OpenTelemetry's ``environment_variables`` module, this is the one place the rooms
share for configuration; it lives in the agent because the agent is the bottom layer
every other room may import.

A setting resolves as explicit argument > environment variable > default, like the
OpenTelemetry SDK. Parsing happens at configuration time and fails fast with the
variable's name in the message; nothing here runs on a request path.
"""

from __future__ import annotations

import argparse
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar

__all__ = [
    "ConfigurationError",
    "Setting",
    "add_arguments",
    "memory_size_bytes",
    "parse_bool",
    "parse_choice",
    "parse_fraction",
    "parse_memory_size",
    "parse_positive_float",
    "parse_positive_int",
    "parse_str",
    "read_config_file",
    "resolve",
    "settings_table_markdown",
]

T = TypeVar("T")


class ConfigurationError(ValueError):
    """A setting has a value that cannot be used; raised at configuration time only."""


def parse_str(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a positive number")
    return value


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def parse_fraction(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number between 0 and 1")
    return value


# DuckDB's size units: decimal KB…TB, binary KiB…TiB.
_MEMORY_UNITS: Final = {
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def _memory_size(raw: str) -> tuple[str, float, str]:
    value = raw.strip().replace(" ", "")
    number = value.rstrip("BbKkMmGgTtIi")
    unit = value[len(number) :].upper()
    if not number or unit not in _MEMORY_UNITS:
        raise ValueError("expected a size such as 256MB or 2GiB")
    if float(number) <= 0:
        raise ValueError("expected a positive size")
    return value, float(number), unit


def parse_memory_size(raw: str) -> str:
    """A DuckDB memory size such as ``256MB`` or ``2GiB`` (collector and serve buffer pools)."""
    return _memory_size(raw)[0]


def memory_size_bytes(raw: str) -> int:
    """Bytes of a DuckDB memory size (``256MB`` decimal, ``2GiB`` binary, as DuckDB reads
    them); ``ValueError`` when it is not one."""
    _, number, unit = _memory_size(raw)
    return int(number * _MEMORY_UNITS[unit])


def parse_choice(*choices: str) -> Callable[[str], str]:
    """A parser accepting one of ``choices`` (case-insensitive), for enumerated settings."""
    allowed = {choice.lower(): choice for choice in choices}

    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError("expected one of " + ", ".join(choices))
        return allowed[value]

    parse.__name__ = "choice"
    return parse


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One configurable value: its keyword name, environment variable and default."""

    name: str
    env: str
    default: T
    parse: Callable[[str], T]
    help: str
    # CLI flag; derived from the name when empty ("max_body_bytes" -> "--max-body-bytes").
    flag: str = ""
    # Checks an explicit non-string argument (configure(x=0.5)) with the same rules the
    # string parser applies; returns the value to use or raises ValueError/TypeError.
    # Without it, explicit non-string values are taken as given.
    validate: Callable[[Any], T] | None = None
    # Secret values (headers carrying API keys) are never echoed in error messages.
    secret: bool = False

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def from_env(self, environ: Mapping[str, str]) -> T | None:
        raw = environ.get(self.env)
        if raw is None or raw.strip() == "":
            return None
        try:
            return self.parse(raw)
        except (ValueError, TypeError, OverflowError) as exc:
            shown = "<redacted>" if self.secret else repr(raw)
            raise ConfigurationError(f"{self.env}={shown}: {exc}") from None

    def coerce(self, value: Any) -> T:
        """Validate an explicit argument with the same rules as the environment."""
        try:
            if isinstance(value, str):
                return self.parse(value)
            if self.validate is not None:
                return self.validate(value)
        except (ValueError, TypeError, OverflowError) as exc:
            shown = "<redacted>" if self.secret else repr(value)
            raise ConfigurationError(f"{self.name}={shown}: {exc}") from None
        return value  # type: ignore[no-any-return]


def resolve(
    table: Iterable[Setting[Any]],
    explicit: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve every setting: explicit (not None) > environment > default."""
    explicit = explicit or {}
    env = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for setting in table:
        given = explicit.get(setting.name)
        if given is not None:
            resolved[setting.name] = setting.coerce(given)
            continue
        from_env = setting.from_env(env)
        resolved[setting.name] = setting.default if from_env is None else from_env
    return resolved


def add_arguments(parser: argparse.ArgumentParser, table: Iterable[Setting[Any]]) -> None:
    """Add one flag per setting; unset flags stay None so env and defaults still apply."""
    for setting in table:
        kwargs: dict[str, Any] = {
            "dest": setting.name,
            "default": None,
            # argparse %-formats help strings: a literal % (a default, "80% of RAM") must
            # be doubled or --help crashes.
            "help": f"{setting.help} (env {setting.env}, default {setting.default!r})".replace(
                "%", "%%"
            ),
        }
        if setting.parse is parse_bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = setting.parse
        parser.add_argument(setting.cli_flag, **kwargs)


def settings_table_markdown(table: Iterable[Setting[Any]]) -> str:
    """The README's configuration table, generated from the same declaration."""
    rows = ["| argument | environment variable | default | meaning |", "|---|---|---|---|"]
    for setting in table:
        rows.append(
            f"| `{setting.name}` | `{setting.env}` | `{setting.default!r}` | {setting.help} |"
        )
    return "\n".join(rows)


def read_config_file(
    path: str | os.PathLike[str], *, what: str, default_format: Literal["toml", "yaml"] = "toml"
) -> Mapping[str, Any]:
    """The top-level table of a user's file: YAML for ``.yaml``/``.yml``, TOML for ``.toml``,
    else ``default_format``. Errors name the file: ``FileNotFoundError`` when it is missing,
    ``ConfigurationError`` when it does not parse or holds no table (``what`` says which
    file it is, e.g. "pricing file")."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {file} does not exist") from None
    suffix = file.suffix.lower()
    as_yaml = suffix in {".yaml", ".yml"} or (suffix != ".toml" and default_format == "yaml")
    try:
        if as_yaml:
            import yaml  # only configuration files written in YAML need PyYAML

            data = yaml.safe_load(text)
            data = {} if data is None else data
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser error becomes one clear line
        detail = " ".join(str(exc).split())  # YAML errors span several lines
        language = "YAML" if as_yaml else "TOML"
        raise ConfigurationError(f"{what} {file}: not valid {language}: {detail}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{what} {file}: expected a table at the top level")
    return data
