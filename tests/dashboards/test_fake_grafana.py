"""The fake Grafana really enforces the OpenAPI spec (else the push tests prove nothing)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaBadInputError, GrafanaClientError
from infermeter.dashboards.testing import FakeGrafana

OPENAPI_TOKEN = "admin-token"


def _call(fake: FakeGrafana, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        fake.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {OPENAPI_TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_body_of_the_wrong_type_is_rejected_and_recorded(grafana: FakeGrafana) -> None:
    status, body = _call(grafana, "POST", "/api/folders", {"title": 42})
    assert status == 400
    assert "title: 42 is not of type 'string'" in body["message"]
    assert grafana.violations
    grafana.violations.clear()  # expected here; the fixture asserts none are left


def test_read_only_properties_are_rejected(grafana: FakeGrafana) -> None:
    contact = {
        "name": "x",
        "type": "webhook",
        "settings": {"url": "http://h/"},
        "provenance": "api",
    }
    status, _ = _call(grafana, "POST", "/api/v1/provisioning/contact-points", contact)
    assert status == 400
    assert any("read-only" in v for v in grafana.violations)
    grafana.violations.clear()


def test_contact_point_type_quirk_is_normalised(grafana: FakeGrafana) -> None:
    contact = {"name": "hook", "type": "webhook", "settings": {"url": "http://h/"}}
    status, body = _call(grafana, "POST", "/api/v1/provisioning/contact-points", contact)
    assert status == 202 and body["uid"]
    status, _ = _call(
        grafana,
        "POST",
        "/api/v1/provisioning/contact-points",
        {**contact, "type": "carrier-pigeon"},
    )
    assert status == 400
    grafana.violations.clear()


def test_unknown_paths_and_methods(grafana: FakeGrafana) -> None:
    assert _call(grafana, "GET", "/api/no-such-thing")[0] == 404
    assert _call(grafana, "GET", "/elsewhere/api/folders")[0] == 404
    assert _call(grafana, "PATCH", "/api/folders")[0] == 405
    status, _ = _call(grafana, "GET", "/api/folders?colour=blue")
    assert status == 400
    grafana.violations.clear()


def test_grafana_client_round_trip_and_conflicts(grafana: FakeGrafana) -> None:
    api = GrafanaApi.from_url(grafana.url, credential=OPENAPI_TOKEN)
    assert api.version == "11.4.0"  # health.check() reads /api/frontend/settings
    api.folder.create_folder("infermeter", uid="infermeter")
    with pytest.raises(GrafanaClientError) as conflict:
        api.folder.create_folder("infermeter", uid="infermeter")
    assert conflict.value.status_code == 409
    with pytest.raises(GrafanaBadInputError):
        api.dashboard.update_dashboard(
            {"dashboard": {"title": "t", "uid": "u"}, "folderUid": "infermeter"}
        )
    # the dashboard failed the dashboard JSON Schema (no schemaVersion / templating)
    assert any("dashboard u" in v for v in grafana.violations)
    grafana.violations.clear()
    assert [r.status for r in grafana.requests][-1] == 400
