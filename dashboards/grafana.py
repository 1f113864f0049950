"""Talking to Grafana through grafana-client: connection, error messages, and the
folder and Prometheus data source every infermeter object lives in.

Shared by ``infermeter dashboards push`` and ``infermeter alerts push``. Every operation
is idempotent: it reads the current object first and writes only when it differs, so
pushing twice leaves one copy of each object in the same state (and no version churn).
Errors become one line naming what to fix (token, role, URL, reachability), never a
traceback; the token never appears in a message.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from infermeter.agent.settings import (
    ConfigurationError,
    Setting,
    parse_positive_float,
    parse_str,
    resolve,
)

__all__ = [
    "ENV_GRAFANA_TOKEN",
    "ENV_GRAFANA_URL",
    "GRAFANA_SETTINGS",
    "GrafanaTarget",
    "PushReport",
    "connect",
    "ensure_datasource",
    "ensure_folder",
    "grafana_errors",
    "is_not_found",
    "parse_url",
]

# grafana-client's own variable names (GrafanaApi.from_env), so one environment serves both.
ENV_GRAFANA_URL: Final = "GRAFANA_URL"
ENV_GRAFANA_TOKEN: Final = "GRAFANA_TOKEN"
ENV_GRAFANA_TIMEOUT: Final = "GRAFANA_TIMEOUT"
ENV_PROMETHEUS_URL: Final = "INFERMETER_PROMETHEUS_URL"
ENV_GRAFANA_FOLDER_UID: Final = "INFERMETER_GRAFANA_FOLDER_UID"
ENV_GRAFANA_FOLDER: Final = "INFERMETER_GRAFANA_FOLDER"
ENV_GRAFANA_DATASOURCE_UID: Final = "INFERMETER_GRAFANA_DATASOURCE_UID"


def parse_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value


def _parse_uid(raw: str) -> str:
    value = parse_str(raw)
    if len(value) > 40 or not all(c.isalnum() or c in "-_" for c in value):
        raise ValueError("a Grafana uid is 1-40 letters, digits, '-' or '_'")
    return value


GRAFANA_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    # Both may carry credentials (a token; user:password in the URL): never echoed.
    Setting(
        "grafana_url",
        ENV_GRAFANA_URL,
        "",
        parse_url,
        "Grafana base URL, e.g. https://grafana.example.com (include any sub-path)",
        secret=True,
    ),
    Setting(
        "token",
        ENV_GRAFANA_TOKEN,
        "",
        parse_str,
        "Grafana service-account token (Editor role or better); or put user:password in the URL",
        secret=True,
    ),
    Setting(
        "prometheus_url",
        ENV_PROMETHEUS_URL,
        "http://localhost:9090",
        parse_url,
        "URL Grafana reaches the Prometheus that scrapes `infermeter serve` at",
    ),
    Setting(
        "folder_uid",
        ENV_GRAFANA_FOLDER_UID,
        "infermeter",
        _parse_uid,
        "uid of the Grafana folder holding infermeter's dashboards and alert rules",
    ),
    Setting("folder_title", ENV_GRAFANA_FOLDER, "infermeter", parse_str, "title of that folder"),
    Setting(
        "datasource_uid",
        ENV_GRAFANA_DATASOURCE_UID,
        "infermeter-prometheus",
        _parse_uid,
        "uid of the Prometheus data source infermeter creates and queries",
    ),
    Setting(
        "timeout",
        ENV_GRAFANA_TIMEOUT,
        10.0,
        parse_positive_float,
        "seconds to wait for each Grafana API call",
    ),
)

DATASOURCE_NAME: Final = "infermeter Prometheus"


@dataclass(frozen=True)
class GrafanaTarget:
    """Where and how to provision: the resolved ``GRAFANA_SETTINGS``."""

    grafana_url: str
    token: str
    prometheus_url: str
    folder_uid: str
    folder_title: str
    datasource_uid: str
    timeout: float

    @classmethod
    def resolve(
        cls, explicit: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> GrafanaTarget:
        values = resolve(GRAFANA_SETTINGS, explicit, environ)
        if not values["grafana_url"]:
            raise ConfigurationError(f"no Grafana URL: pass --grafana-url or set {ENV_GRAFANA_URL}")
        has_userinfo = urllib.parse.urlsplit(values["grafana_url"]).password is not None
        if not values["token"] and not has_userinfo:
            raise ConfigurationError(
                f"no Grafana credentials: pass --token or set {ENV_GRAFANA_TOKEN} (a service "
                "account token), or put user:password in the URL"
            )
        return cls(**values)

    @property
    def display_url(self) -> str:
        """The Grafana URL without any user:password in it (for messages)."""
        parts = urllib.parse.urlsplit(self.grafana_url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass
class PushReport:
    """What a push did to each object: created, updated or unchanged."""

    actions: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str) -> None:
        self.actions.append((kind, name, action))

    def changed(self) -> int:
        return sum(1 for _, _, action in self.actions if action != "unchanged")

    def lines(self) -> list[str]:
        return [f"{action:9} {kind} {name}" for kind, name, action in self.actions]


def connect(target: GrafanaTarget) -> Any:
    """A grafana-client ``GrafanaApi`` for ``target`` (no request is made yet).

    Typed ``Any``: grafana-client's methods carry no annotations."""
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(
        target.grafana_url, credential=target.token or None, timeout=target.timeout
    )


def is_not_found(exc: BaseException) -> bool:
    from grafana_client.client import GrafanaClientError

    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


@contextlib.contextmanager
def grafana_errors(target: GrafanaTarget, doing: str) -> Iterator[None]:
    """Turn grafana-client / niquests failures into one-line ``OSError``/``ValueError``."""
    import niquests
    from grafana_client.client import (
        GrafanaClientError,
        GrafanaException,
        GrafanaServerError,
        GrafanaTimeoutError,
        GrafanaUnauthorizedError,
    )

    where = target.display_url
    try:
        yield
    except GrafanaUnauthorizedError:
        raise ValueError(
            f"Grafana at {where} rejected the credentials (401 Unauthorized) while {doing}: "
            f"check --token / {ENV_GRAFANA_TOKEN}"
        ) from None
    except GrafanaTimeoutError:
        raise OSError(
            f"Grafana at {where} did not answer within {target.timeout:g}s while "
            f"{doing} (raise --timeout / {ENV_GRAFANA_TIMEOUT})"
        ) from None
    except GrafanaClientError as exc:
        message = _message(exc)
        if exc.status_code == 403:
            raise ValueError(
                f"Grafana at {where} refused {doing} (403 Forbidden: {message}): the token "
                "needs the Editor role, or Admin for data sources"
            ) from None
        if exc.status_code == 404:
            raise ValueError(
                f"Grafana API not found at {where} (404 while {doing}): check --grafana-url "
                "(include the sub-path if Grafana is served under one)"
            ) from None
        raise ValueError(
            f"Grafana at {where} rejected {doing} ({exc.status_code}: {message})"
        ) from None
    except GrafanaServerError as exc:
        raise OSError(
            f"Grafana at {where} failed while {doing} ({exc.status_code}: {_message(exc)})"
        ) from None
    except GrafanaException as exc:
        raise OSError(f"cannot talk to Grafana at {where} while {doing}: {exc.message}") from None
    except niquests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
        raise OSError(f"cannot connect to Grafana at {where}: {reason}") from None
    except niquests.exceptions.RequestException as exc:
        raise OSError(
            f"cannot talk to Grafana at {where} while {doing}: {type(exc).__name__}"
        ) from None


def _message(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    return str(getattr(exc, "message", exc)).splitlines()[0][:200]


def ensure_folder(api: Any, target: GrafanaTarget, report: PushReport) -> None:
    """Create the folder, or retitle it; leave it alone when it already matches."""
    try:
        folder = api.folder.get_folder(target.folder_uid)
    except Exception as exc:
        if not is_not_found(exc):
            raise
        try:
            api.folder.create_folder(target.folder_title, uid=target.folder_uid)
        except Exception as create_exc:
            from grafana_client.client import GrafanaClientError

            if isinstance(create_exc, GrafanaClientError) and create_exc.status_code == 409:
                raise ValueError(
                    f"Grafana already has a folder titled {target.folder_title!r} with another "
                    f"uid: pass --folder-uid with its uid, or choose another --folder-title"
                ) from None
            raise
        report.add("folder", target.folder_uid, "created")
        return
    if folder.get("title") != target.folder_title:
        api.folder.update_folder(target.folder_uid, title=target.folder_title, overwrite=True)
        report.add("folder", target.folder_uid, "updated")
    else:
        report.add("folder", target.folder_uid, "unchanged")


def datasource_body(target: GrafanaTarget) -> dict[str, Any]:
    return {
        "uid": target.datasource_uid,
        "name": DATASOURCE_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": target.prometheus_url,
        "isDefault": False,
        "basicAuth": False,
        "jsonData": {
            "httpMethod": "POST",
            "prometheusType": "Prometheus",
            # infermeter's rollups change once per exporter refresh; a coarser interval
            # than Grafana's 15s default keeps rate() windows meaningful.
            "timeInterval": "30s",
        },
    }


def ensure_datasource(api: Any, target: GrafanaTarget, report: PushReport) -> None:
    """Create the Prometheus data source, or update it when its settings differ."""
    desired = datasource_body(target)
    try:
        current = api.datasource.get_datasource_by_uid(target.datasource_uid)
    except Exception as exc:
        if not is_not_found(exc):
            raise
        for existing in api.datasource.list_datasources():
            if existing.get("name") == DATASOURCE_NAME:
                raise ValueError(
                    f"Grafana already has a data source named {DATASOURCE_NAME!r} with uid "
                    f"{existing.get('uid')!r}: pass --datasource-uid {existing.get('uid')} to "
                    "reuse it"
                ) from None
        api.datasource.create_datasource(desired)
        report.add("datasource", target.datasource_uid, "created")
        return
    if all(current.get(key) == value for key, value in desired.items()):
        report.add("datasource", target.datasource_uid, "unchanged")
        return
    api.datasource.update_datasource_by_uid(
        target.datasource_uid, {**desired, "version": current.get("version")}
    )
    report.add("datasource", target.datasource_uid, "updated")
