"""Test helpers: a fake Grafana checked against Grafana's OpenAPI spec, and real
Prometheus / Alertmanager processes on loopback.

No Grafana server can run where infermeter's tests run, so :class:`FakeGrafana` is a
small stateful HTTP server that answers the provisioning API the way Grafana 11 does
and validates every request (path, method, parameters and JSON body) against Grafana's
own OpenAPI document. Anything the spec does not allow is answered 400 and recorded in
``violations``; tests assert that list stays empty. Its own responses are checked
against the spec too, so the fake cannot drift from Grafana silently.

:class:`PrometheusServer` and :class:`AlertmanagerServer` start the real binaries
(Debian packages ``prometheus`` and ``prometheus-alertmanager``) on 127.0.0.1 with a
temporary configuration and data directory, and stop them by PID. :class:`WebhookReceiver`
collects what Alertmanager (or ``infermeter alerts check``) posts.

jsonschema is a development dependency: it is imported when a ``FakeGrafana`` starts.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "AlertmanagerServer",
    "FakeGrafana",
    "GrafanaRequest",
    "PrometheusServer",
    "ScrapeTarget",
    "WebhookReceiver",
    "free_port",
    "wait_for",
]

Json = Any
_GRAFANA_VERSION = "11.4.0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for binaries that cannot
    report the port they bound when given port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# Fake Grafana
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrafanaRequest:
    """One request the fake received, as recorded for assertions."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Json
    status: int
    operation: str | None


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Route:
    pattern: re.Pattern[str]
    template: str
    operations: Mapping[str, Json]
    literal_length: int


class _Spec:
    """Grafana's Swagger 2.0 document: routing and validation."""

    def __init__(self, document: Json) -> None:
        import jsonschema

        self.document = document
        definitions = copy.deepcopy(document["definitions"])
        # Quirk of the published spec: enum values with a leading space (' webhook').
        contact_type = definitions["EmbeddedContactPoint"]["properties"]["type"]
        contact_type["enum"] = [value.strip() for value in contact_type["enum"]]
        self.definitions = definitions
        self.base_path: str = document.get("basePath", "")

        def read_only(validator: Any, value: Any, instance: Any, schema: Json) -> Iterator[Any]:
            if value:
                yield jsonschema.ValidationError("read-only property sent in a request")

        self._request_validator_class = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
            jsonschema.Draft4Validator, {"readOnly": read_only}
        )
        self._response_validator_class = jsonschema.Draft4Validator
        self._format_checker = jsonschema.FormatChecker()
        self.routes: list[_Route] = []
        for template, operations in document["paths"].items():
            regex = re.sub(
                r"\\{([^}]+)\\}", lambda m: f"(?P<{_group(m.group(1))}>[^/]+)", re.escape(template)
            )
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self.routes.append(_Route(re.compile(f"^{regex}$"), template, operations, literal))
        # Literal segments win over parameters (/datasources/uid/{uid} before /datasources/{id}).
        self.routes.sort(key=lambda route: -route.literal_length)

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                names = re.findall(r"\{([^}]+)\}", route.template)
                values = {name: urllib.parse.unquote(found.group(_group(name))) for name in names}
                return route, values
        return None

    def _validate(self, cls: Any, schema: Json, instance: Json) -> list[str]:
        root = {**schema, "definitions": self.definitions}
        validator = cls(root, format_checker=self._format_checker)
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]

    def validate_request(self, schema: Json, instance: Json) -> list[str]:
        return self._validate(self._request_validator_class, schema, instance)

    def validate_response(self, operation: Json, status: int, body: Json) -> list[str]:
        response = operation.get("responses", {}).get(str(status))
        if response is None:
            return [f"status {status} is not a documented response of {operation['operationId']}"]
        if "$ref" in response:
            response = self.document["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response.get("schema")
        if schema is None:
            return []
        return self._validate(self._response_validator_class, schema, body)


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


_Handler = Callable[
    ["FakeGrafana", dict[str, str], Mapping[str, list[str]], Json, Mapping[str, str]],
    tuple[int, Json],
]


class _LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, served from a daemon thread;
    subclasses build their handler class in ``start`` and call :meth:`_listen`."""

    _server: ThreadingHTTPServer | None = None

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._server.server_address[1])


class FakeGrafana(_LoopbackServer):
    """A stateful stand-in for Grafana 11's HTTP API on 127.0.0.1 (tests only).

    ``tokens`` maps bearer tokens to an org role (``Admin``, ``Editor``, ``Viewer``):
    unknown tokens get 401, a Viewer writing gets 403. Request bodies are validated
    against ``spec`` (Grafana's OpenAPI document); dashboards additionally against
    ``dashboard_schema`` when given. Use as a context manager; ``url`` is the base URL.
    """

    def __init__(
        self,
        spec: str | Path,
        *,
        tokens: Mapping[str, str] | None = None,
        dashboard_schema: str | Path | None = None,
    ) -> None:
        self._spec = _Spec(json.loads(Path(spec).read_text(encoding="utf-8")))
        self._dashboard_validator: Any = None
        if dashboard_schema is not None:
            import jsonschema

            schema = json.loads(Path(dashboard_schema).read_text(encoding="utf-8"))
            self._dashboard_validator = jsonschema.Draft7Validator(schema)
        self.tokens = dict(tokens or {"test-token": "Admin"})
        self.requests: list[GrafanaRequest] = []
        self.violations: list[str] = []
        self.folders: dict[str, Json] = {}
        self.datasources: dict[str, Json] = {}
        self.dashboards: dict[str, Json] = {}
        self.alert_rules: dict[str, Json] = {}
        self.rule_groups: dict[tuple[str, str], Json] = {}
        self.contact_points: dict[str, Json] = {}
        self.policy: Json = {
            "receiver": "grafana-default-email",
            "group_by": ["grafana_folder", "alertname"],
        }
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # Grafana's out-of-the-box receiver the default policy routes to.
        self.contact_points["default-email"] = {
            "uid": "default-email",
            "name": "grafana-default-email",
            "type": "email",
            "settings": {"addresses": "<example@email.com>"},
            "disableResolveMessage": False,
        }

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: tests read ``requests`` instead."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake._handle(self.command, self.path, dict(self.headers), raw)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

        self._listen(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def writes(self) -> list[GrafanaRequest]:
        """Requests that changed (or tried to change) state."""
        return [r for r in self.requests if r.method in {"POST", "PUT", "DELETE", "PATCH"}]

    # -- dispatch ----------------------------------------------------------------------
    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Json]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parsed.query)
        body: Json = None
        operation_id: str | None = None
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise _HttpError(400, "bad request data: body is not JSON") from None
            status, out, operation_id = self._route(method, parsed.path, query, body, headers)
        except _HttpError as exc:
            status, out = exc.status, {"message": exc.message}
        with self._lock:
            self.requests.append(
                GrafanaRequest(method, parsed.path, query, body, status, operation_id)
            )
        return status, out

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Json,
        headers: Mapping[str, str],
    ) -> tuple[int, Json, str | None]:
        base = self._spec.base_path
        if not path.startswith(base + "/"):
            raise _HttpError(404, "Not found")
        api_path = path[len(base) :]
        role = self._authenticate(headers)
        if api_path == "/frontend/settings" and method == "GET":
            # Not in the spec; grafana-client's health.check() reads buildInfo from it.
            return 200, {"buildInfo": {"version": _GRAFANA_VERSION, "edition": "Open Source"}}, None
        matched = self._spec.match(api_path)
        if matched is None:
            raise _HttpError(404, "Not found")
        route, path_params = matched
        operation = route.operations.get(method.lower())
        if not isinstance(operation, dict):
            raise _HttpError(405, f"method {method} not allowed on {route.template}")
        operation_id: str = operation["operationId"]
        self._check_parameters(operation, query, body, headers, operation_id)
        if method != "GET" and role == "Viewer":
            raise _HttpError(
                403,
                "You'll need additional permissions to perform this action. "
                f"Permissions needed: {operation_id}",
            )
        handler = _HANDLERS.get(operation_id)
        if handler is None:
            self.violations.append(
                f"{method} {route.template}: {operation_id} is in the spec "
                "but not implemented by the fake"
            )
            raise _HttpError(501, f"{operation_id} not implemented by FakeGrafana")
        with self._lock:
            status, out = handler(self, path_params, query, body, headers)
        problems = self._spec.validate_response(operation, status, out)
        if problems:
            self.violations.extend(
                f"fake response of {operation_id} {status}: {p}" for p in problems
            )
        return status, out, operation_id

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        role = self.tokens.get(token)
        if role is None:
            raise _HttpError(401, "Unauthorized")
        return role

    def _check_parameters(
        self,
        operation: Json,
        query: Mapping[str, list[str]],
        body: Json,
        headers: Mapping[str, str],
        operation_id: str,
    ) -> None:
        problems: list[str] = []
        lowered = {k.lower(): v for k, v in headers.items()}
        for param in operation.get("parameters", []):
            where, name = param["in"], param["name"]
            if where == "body":
                if body is None:
                    if param.get("required"):
                        problems.append("missing JSON body")
                    continue
                problems += self._spec.validate_request(param["schema"], body)
            elif where == "query" and name in query:
                problems += _check_scalar(name, param, query[name])
            elif where == "header" and name.lower() in lowered:
                problems += _check_scalar(name, param, [lowered[name.lower()]])
            elif param.get("required") and where in {"query", "header"}:
                problems.append(f"missing required {where} parameter {name}")
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        problems += [
            f"undocumented query parameter {name}" for name in query if name not in documented
        ]
        if body is not None and not any(p["in"] == "body" for p in operation.get("parameters", [])):
            problems.append("a JSON body was sent to an operation that takes none")
        if problems:
            self.violations.extend(f"{operation_id}: {p}" for p in problems)
            raise _HttpError(400, f"{operation_id}: " + "; ".join(problems))

    def _check_dashboard(self, dashboard: Json) -> None:
        if self._dashboard_validator is None:
            return
        errors = [
            f"dashboard {dashboard.get('uid')}: "
            f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in self._dashboard_validator.iter_errors(dashboard)
        ]
        if errors:
            self.violations.extend(errors)
            raise _HttpError(400, errors[0])

    def next_id(self) -> int:
        return next(self._ids)


def _check_scalar(name: str, param: Json, values: Sequence[str]) -> list[str]:
    kind = param.get("type")
    if kind == "array":
        return []
    problems = []
    for value in values:
        if kind == "integer" and not re.fullmatch(r"-?\d+", value):
            problems.append(f"{name}={value!r} is not an integer")
        elif kind == "boolean" and value not in {"true", "false"}:
            problems.append(f"{name}={value!r} is not a boolean")
    return problems


# -- operation handlers (Grafana 11 behaviour, state in the FakeGrafana) ------------------


def _folder_json(g: FakeGrafana, folder: Json) -> Json:
    return {
        "id": folder["id"],
        "uid": folder["uid"],
        "title": folder["title"],
        "url": f"/dashboards/f/{folder['uid']}/",
        "version": folder["version"],
        "hasAcl": False,
        "canSave": True,
        "canEdit": True,
        "canAdmin": True,
        "canDelete": True,
        "created": folder["created"],
        "updated": folder["updated"],
        "createdBy": "admin",
        "updatedBy": "admin",
        "orgId": 1,
        **({"description": folder["description"]} if folder.get("description") else {}),
    }


def _get_folders(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    return 200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in g.folders.values()]


def _get_folder(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    folder = g.folders.get(p["folder_uid"])
    if folder is None:
        raise _HttpError(404, "folder not found")
    return 200, _folder_json(g, folder)


def _create_folder(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    title = (body.get("title") or "").strip()
    if not title:
        raise _HttpError(400, "folder title cannot be empty")
    uid = body.get("uid") or f"f{g.next_id():08d}"
    if uid in g.folders:
        raise _HttpError(409, "a folder with the same uid already exists")
    if any(f["title"] == title for f in g.folders.values()):
        raise _HttpError(409, "a folder with the same name already exists")
    now = _now()
    g.folders[uid] = {
        "id": g.next_id(),
        "uid": uid,
        "title": title,
        "version": 1,
        "created": now,
        "updated": now,
        "description": body.get("description"),
    }
    return 200, _folder_json(g, g.folders[uid])


def _update_folder(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    folder = g.folders.get(p["folder_uid"])
    if folder is None:
        raise _HttpError(404, "folder not found")
    if not body.get("overwrite") and body.get("version") not in (None, folder["version"]):
        raise _HttpError(409, "the folder has been changed by someone else")
    if body.get("title"):
        folder["title"] = body["title"]
    if "description" in body:
        folder["description"] = body["description"]
    folder["version"] += 1
    folder["updated"] = _now()
    return 200, _folder_json(g, folder)


def _datasource_json(ds: Json) -> Json:
    return {k: v for k, v in ds.items() if k != "secureJsonData"} | {
        "secureJsonFields": dict.fromkeys(ds.get("secureJsonData") or {}, True),
        "readOnly": False,
    }


def _get_datasources(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    keys = ("id", "uid", "orgId", "name", "type", "access", "url", "isDefault", "jsonData")
    return 200, [{k: ds[k] for k in keys if k in ds} for ds in g.datasources.values()]


def _get_datasource_by_uid(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    ds = g.datasources.get(p["uid"])
    if ds is None:
        raise _HttpError(404, "Data source not found")
    return 200, _datasource_json(ds)


def _get_datasource_by_name(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    for ds in g.datasources.values():
        if ds["name"] == p["name"]:
            return 200, _datasource_json(ds)
    raise _HttpError(404, "Data source not found")


def _add_datasource(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    for key in ("name", "type", "access"):
        if not body.get(key):
            raise _HttpError(400, f"data source {key} is required")
    if any(ds["name"] == body["name"] for ds in g.datasources.values()):
        raise _HttpError(409, "data source with the same name already exists")
    uid = body.get("uid") or f"ds{g.next_id():06d}"
    if uid in g.datasources:
        raise _HttpError(409, "data source with the same uid already exists")
    ds = {**body, "uid": uid, "id": g.next_id(), "orgId": 1, "version": 1}
    g.datasources[uid] = ds
    return 200, {
        "id": ds["id"],
        "name": ds["name"],
        "message": "Datasource added",
        "datasource": _datasource_json(ds),
    }


def _update_datasource_by_uid(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    ds = g.datasources.get(p["uid"])
    if ds is None:
        raise _HttpError(404, "Data source not found")
    for key in ("name", "type", "access"):
        if not body.get(key):
            raise _HttpError(400, f"data source {key} is required")
    if body.get("version") not in (None, ds["version"]):
        raise _HttpError(409, "Datasource has already been updated by someone else")
    updated = {**body, "uid": ds["uid"], "id": ds["id"], "orgId": 1, "version": ds["version"] + 1}
    if "secureJsonData" not in body and "secureJsonData" in ds:
        updated["secureJsonData"] = ds["secureJsonData"]
    g.datasources[ds["uid"]] = updated
    return 200, {
        "id": ds["id"],
        "name": updated["name"],
        "message": "Datasource updated",
        "datasource": _datasource_json(updated),
    }


def _post_dashboard(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    dashboard = body.get("dashboard")
    if not isinstance(dashboard, dict) or not dashboard.get("title"):
        raise _HttpError(400, "Dashboard title cannot be empty")
    g._check_dashboard(dashboard)
    folder_uid = body.get("folderUid") or ""
    if folder_uid and folder_uid not in g.folders:
        raise _HttpError(400, "folder not found")
    uid = dashboard.get("uid") or f"d{g.next_id():08d}"
    existing = g.dashboards.get(uid)
    overwrite = bool(body.get("overwrite"))
    for other_uid, other in g.dashboards.items():
        if (
            other_uid != uid
            and other["folderUid"] == folder_uid
            and other["dashboard"]["title"] == dashboard["title"]
            and not overwrite
        ):
            raise _HttpError(412, "A dashboard with the same name in the folder already exists")
    if (
        existing is not None
        and not overwrite
        and dashboard.get("version") != existing["dashboard"]["version"]
    ):
        raise _HttpError(412, "The dashboard has been changed by someone else")
    version = existing["dashboard"]["version"] + 1 if existing else 1
    dashboard_id = existing["dashboard"]["id"] if existing else g.next_id()
    stored = {**dashboard, "uid": uid, "id": dashboard_id, "version": version}
    slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
    g.dashboards[uid] = {
        "dashboard": stored,
        "folderUid": folder_uid,
        "slug": slug,
        "message": body.get("message", ""),
        "updated": _now(),
    }
    return 200, {
        "id": dashboard_id,
        "uid": uid,
        "url": f"/d/{uid}/{slug}",
        "status": "success",
        "version": version,
        "slug": slug,
        "title": dashboard["title"],
        "folderUid": folder_uid,
    }


def _get_dashboard(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    entry = g.dashboards.get(p["uid"])
    if entry is None:
        raise _HttpError(404, "Dashboard not found")
    folder = g.folders.get(entry["folderUid"])
    return 200, {
        "dashboard": entry["dashboard"],
        "meta": {
            "type": "db",
            "slug": entry["slug"],
            "url": f"/d/{p['uid']}/{entry['slug']}",
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canStar": True,
            "canDelete": True,
            "folderUid": entry["folderUid"],
            "folderTitle": folder["title"] if folder else "General",
            "version": entry["dashboard"]["version"],
            "updated": entry["updated"],
            "provisioned": False,
        },
    }


def _search(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    text = (q.get("query") or [""])[0].lower()
    tags = set(q.get("tag") or [])
    hits = []
    for uid, entry in g.dashboards.items():
        dashboard = entry["dashboard"]
        if text and text not in dashboard["title"].lower():
            continue
        if tags and not tags <= set(dashboard.get("tags") or []):
            continue
        hits.append(
            {
                "id": dashboard["id"],
                "uid": uid,
                "title": dashboard["title"],
                "type": "dash-db",
                "tags": dashboard.get("tags") or [],
                "url": f"/d/{uid}/{entry['slug']}",
                "folderUid": entry["folderUid"],
            }
        )
    return 200, hits


def _health(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    return 200, {"database": "ok", "version": _GRAFANA_VERSION, "commit": "fake"}


def _provenance(h: Mapping[str, str]) -> str:
    disabled = any(k.lower() == "x-disable-provenance" for k in h)
    return "" if disabled else "api"


def _check_rule(g: FakeGrafana, rule: Json) -> None:
    if rule["folderUID"] not in g.folders:
        raise _HttpError(400, f"folder {rule['folderUID']} does not exist")
    refs = {query.get("refId") for query in rule["data"]}
    if rule["condition"] not in refs:
        raise _HttpError(
            400,
            f"condition {rule['condition']} does not exist, must be one of "
            f"{sorted(r for r in refs if r)}",
        )
    for query in rule["data"]:
        uid = query.get("datasourceUid")
        if uid not in {"__expr__", "-100"} and uid not in g.datasources:
            raise _HttpError(400, f"data source {uid} of query {query.get('refId')} not found")
        if "model" not in query or "relativeTimeRange" not in query:
            raise _HttpError(400, f"query {query.get('refId')} lacks model or relativeTimeRange")


def _store_rule(g: FakeGrafana, rule: Json, h: Mapping[str, str]) -> Json:
    uid = rule.get("uid") or f"r{g.next_id():08d}"
    previous = g.alert_rules.get(uid)
    stored = {
        **rule,
        "uid": uid,
        "id": previous["id"] if previous else g.next_id(),
        "provenance": _provenance(h),
        "updated": _now(),
        "orgID": 1,
    }
    g.alert_rules[uid] = stored
    return stored


def _get_alert_rules(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    return 200, list(g.alert_rules.values())


def _get_alert_rule(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    rule = g.alert_rules.get(p["UID"])
    if rule is None:
        raise _HttpError(404, "rule not found")
    return 200, rule


def _post_alert_rule(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    if body.get("uid") in g.alert_rules:
        raise _HttpError(400, f"a rule with uid {body['uid']} already exists")
    _check_rule(g, body)
    return 201, _store_rule(g, body, h)


def _put_alert_rule(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    if p["UID"] not in g.alert_rules:
        raise _HttpError(404, "rule not found")
    _check_rule(g, body)
    return 200, _store_rule(g, {**body, "uid": p["UID"]}, h)


def _delete_alert_rule(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    g.alert_rules.pop(p["UID"], None)
    return 204, None


def _group_json(g: FakeGrafana, folder_uid: str, title: str) -> Json:
    group = g.rule_groups[(folder_uid, title)]
    rules = [
        r
        for r in g.alert_rules.values()
        if r["folderUID"] == folder_uid and r["ruleGroup"] == title
    ]
    return {"title": title, "folderUid": folder_uid, "interval": group["interval"], "rules": rules}


def _get_rule_group(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    if (p["FolderUID"], p["Group"]) not in g.rule_groups:
        raise _HttpError(404, "rule group not found")
    return 200, _group_json(g, p["FolderUID"], p["Group"])


def _put_rule_group(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    folder_uid, title = p["FolderUID"], p["Group"]
    if folder_uid not in g.folders:
        raise _HttpError(400, f"folder {folder_uid} does not exist")
    interval = body.get("interval")
    if not isinstance(interval, int) or interval <= 0 or interval % 10:
        raise _HttpError(400, "interval must be a positive multiple of the base interval (10s)")
    rules = body.get("rules") or []
    uids = [r.get("uid") for r in rules if r.get("uid")]
    if len(uids) != len(set(uids)):
        raise _HttpError(400, "rule uids must be unique within the group")
    for rule in rules:
        if rule["folderUID"] != folder_uid or rule["ruleGroup"] != title:
            raise _HttpError(400, "rule folderUID / ruleGroup differ from the group's")
        _check_rule(g, rule)
        other = g.alert_rules.get(rule.get("uid") or "")
        if other is not None and (other["folderUID"], other["ruleGroup"]) != (folder_uid, title):
            raise _HttpError(400, f"rule {rule['uid']} belongs to another group")
    keep = set(uids)
    for uid in [
        u
        for u, r in g.alert_rules.items()
        if r["folderUID"] == folder_uid and r["ruleGroup"] == title and u not in keep
    ]:
        del g.alert_rules[uid]
    g.rule_groups[(folder_uid, title)] = {"interval": interval}
    for rule in rules:
        _store_rule(g, rule, h)
    return 200, _group_json(g, folder_uid, title)


def _get_contact_points(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    name = q["name"][0] if q.get("name") else None
    return 200, [cp for cp in g.contact_points.values() if name is None or cp["name"] == name]


def _check_contact_point(body: Json) -> None:
    if body["type"] == "webhook" and not (body.get("settings") or {}).get("url"):
        raise _HttpError(400, "webhook contact point needs settings.url")
    if not body.get("name"):
        raise _HttpError(400, "contact point name is required")


def _post_contact_point(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    _check_contact_point(body)
    uid = body.get("uid") or f"cp{g.next_id():06d}"
    if uid in g.contact_points:
        raise _HttpError(400, f"contact point with uid {uid} already exists")
    stored = {**body, "uid": uid, "provenance": _provenance(h)}
    g.contact_points[uid] = stored
    return 202, stored


def _put_contact_point(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    if p["UID"] not in g.contact_points:
        raise _HttpError(404, "contact point not found")
    _check_contact_point(body)
    g.contact_points[p["UID"]] = {**body, "uid": p["UID"], "provenance": _provenance(h)}
    return 202, {"message": "contactpoint updated"}


def _delete_contact_point(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    g.contact_points.pop(p["UID"], None)
    return 202, {"message": "contactpoint deleted"}


def _receivers(route: Json) -> Iterator[str]:
    if route.get("receiver"):
        yield route["receiver"]
    for child in route.get("routes") or []:
        yield from _receivers(child)


def _get_policy(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    return 200, g.policy


def _put_policy(
    g: FakeGrafana, p: dict[str, str], q: Mapping[str, list[str]], body: Json, h: Mapping[str, str]
) -> tuple[int, Json]:
    if not body.get("receiver"):
        raise _HttpError(400, "the root route must have a receiver")
    names = {cp["name"] for cp in g.contact_points.values()}
    missing = [r for r in _receivers(body) if r not in names]
    if missing:
        raise _HttpError(400, f"receiver {missing[0]!r} does not exist")
    g.policy = {**body, "provenance": _provenance(h)}
    return 202, {"message": "policies updated"}


_HANDLERS: dict[str, _Handler] = {
    "getFolders": _get_folders,
    "getFolderByUID": _get_folder,
    "createFolder": _create_folder,
    "updateFolder": _update_folder,
    "getDataSources": _get_datasources,
    "getDataSourceByUID": _get_datasource_by_uid,
    "getDataSourceByName": _get_datasource_by_name,
    "addDataSource": _add_datasource,
    "updateDataSourceByUID": _update_datasource_by_uid,
    "postDashboard": _post_dashboard,
    "getDashboardByUID": _get_dashboard,
    "search": _search,
    "getHealth": _health,
    "RouteGetAlertRules": _get_alert_rules,
    "RouteGetAlertRule": _get_alert_rule,
    "RoutePostAlertRule": _post_alert_rule,
    "RoutePutAlertRule": _put_alert_rule,
    "RouteDeleteAlertRule": _delete_alert_rule,
    "RouteGetAlertRuleGroup": _get_rule_group,
    "RoutePutAlertRuleGroup": _put_rule_group,
    "RouteGetContactpoints": _get_contact_points,
    "RoutePostContactpoints": _post_contact_point,
    "RoutePutContactpoint": _put_contact_point,
    "RouteDeleteContactpoints": _delete_contact_point,
    "RouteGetPolicyTree": _get_policy,
    "RoutePutPolicyTree": _put_policy,
}


# --------------------------------------------------------------------------------------
# Real Prometheus, Alertmanager and a webhook sink
# --------------------------------------------------------------------------------------


def _http_json(url: str, data: Json = None, timeout: float = 5.0) -> Json:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URLs built by this module
        url,
        data=body,
        headers={"Content-Type": "application/json"} if body else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise ValueError(f"{exc.code} from {url.partition('?')[0]}: {detail}") from None


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> Any:
    """Poll ``condition`` until it returns something truthy; raise TimeoutError after
    ``timeout`` seconds with ``what`` in the message. Returns the truthy value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}"
        + (f" (last error: {last_error})" if last_error else "")
    )


class _Process:
    """A binary run with a temporary directory, stopped by PID."""

    binary: str = ""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"infermeter-{self.binary}-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.directory / "log.txt"

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.binary) is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self, *, timeout: float = 30.0) -> Self:
        if not self.available():
            raise FileNotFoundError(f"{self.binary} is not installed")
        for _attempt in range(5):
            self.port = free_port()
            with self._log.open("ab") as log:
                self._process = subprocess.Popen(
                    self._argv(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break  # exited: most likely the port was taken meanwhile; try another
                with contextlib.suppress(OSError, ValueError):
                    if self._ready():
                        return self
                time.sleep(0.1)
            self.stop(cleanup=False)
        raise RuntimeError(f"{self.binary} did not start; log:\n{self.log()}")

    def log(self) -> str:
        return self._log.read_text(errors="replace")[-4000:] if self._log.exists() else ""

    def stop(self, *, cleanup: bool = True) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if cleanup:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class ScrapeTarget:
    """One scrape job: ``targets`` are host:port strings; ``labels`` attach to its series."""

    job: str
    targets: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)


class PrometheusServer(_Process):
    """A real Prometheus on 127.0.0.1 scraping ``targets`` every ``scrape_interval``."""

    binary = "prometheus"

    def __init__(
        self,
        targets: Sequence[ScrapeTarget] = (),
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: Sequence[str | Path] = (),
        alertmanager_url: str | None = None,
    ) -> None:
        super().__init__()
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.alertmanager_url = alertmanager_url

    def config(self) -> Json:
        config: Json = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": t.job,
                    "static_configs": [{"targets": list(t.targets), "labels": dict(t.labels)}],
                }
                for t in self.targets
            ],
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanager_url:
            host = urllib.parse.urlsplit(self.alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        return config

    def _argv(self) -> list[str]:
        config_file = self.directory / "prometheus.yml"
        # JSON is YAML: no yaml dependency needed to write the config.
        config_file.write_text(json.dumps(self.config(), indent=2))
        return [
            self.binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)

    def api(self, path: str, **params: str | Sequence[str]) -> Json:
        query = urllib.parse.urlencode(params, doseq=True)
        out = _http_json(f"{self.url}/api/v1/{path}?{query}")
        if out.get("status") != "success":
            raise ValueError(f"Prometheus {path}: {out}")
        return out["data"]

    def query(self, expr: str) -> list[Json]:
        """Instant query; the result vector (or a one-element list for a scalar)."""
        data = self.api("query", query=expr)
        if data["resultType"] in {"scalar", "string"}:
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, *, seconds: float = 60, step: str = "1s") -> list[Json]:
        end = time.time()
        data = self.api(
            "query_range", query=expr, start=str(end - seconds), end=str(end), step=step
        )
        return list(data["result"])

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params: dict[str, str | Sequence[str]] = {}
        if match is not None:
            params["match[]"] = [match]
        return list(self.api(f"label/{label}/values", **params))

    def alerts(self) -> list[Json]:
        return list(self.api("alerts")["alerts"])

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


class AlertmanagerServer(_Process):
    """A real Alertmanager on 127.0.0.1 sending every alert to ``webhook_url``."""

    binary = "prometheus-alertmanager"

    def __init__(
        self,
        webhook_url: str,
        *,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
    ) -> None:
        super().__init__()
        self.webhook_url = webhook_url
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.cluster_port = 0

    def config(self) -> Json:
        return {
            "route": {
                "receiver": "test",
                "group_by": ["alertname", "job"],
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [
                {
                    "name": "test",
                    "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
                }
            ],
        }

    def _argv(self) -> list[str]:
        config_file = self.directory / "alertmanager.yml"
        config_file.write_text(json.dumps(self.config(), indent=2))
        return [
            self.binary,
            f"--config.file={config_file}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # No gossip: a single test instance must not look for peers.
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)

    def alerts(self) -> list[Json]:
        return list(_http_json(f"{self.url}/api/v2/alerts"))


class WebhookReceiver(_LoopbackServer):
    """Collects JSON bodies POSTed to it (Alertmanager webhooks, ``alerts check``)."""

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.bodies: list[Json] = []
        self._lock = threading.Lock()

    def start(self) -> Self:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with sink._lock:
                    sink.bodies.append(json.loads(raw or b"null"))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._listen(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def alerts(self) -> list[Json]:
        """Every alert of every received webhook body, in arrival order."""
        with self._lock:
            return [alert for body in self.bodies for alert in (body or {}).get("alerts", [])]
