"""Pushing dashboards through the real grafana-client to a fake Grafana that validates
every request against Grafana's OpenAPI spec; exporting file-provisioning files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from infermeter.dashboards import GrafanaTarget, dashboards, push_dashboards
from infermeter.dashboards.testing import FakeGrafana

from infermeter import main

ADMIN_TOKEN = "admin-token"
VIEWER_TOKEN = "viewer-token"


def _target(grafana: FakeGrafana, **overrides: str) -> GrafanaTarget:
    values = {
        "grafana_url": grafana.url,
        "token": ADMIN_TOKEN,
        "prometheus_url": "http://prometheus:9090",
        **overrides,
    }
    return GrafanaTarget.resolve(values, environ={})


def test_push_creates_folder_datasource_and_dashboards(grafana: FakeGrafana) -> None:
    report = push_dashboards(_target(grafana))

    assert grafana.folders["infermeter"]["title"] == "infermeter"
    ds = grafana.datasources["infermeter-prometheus"]
    assert (ds["type"], ds["url"], ds["access"]) == (
        "prometheus",
        "http://prometheus:9090",
        "proxy",
    )
    assert set(grafana.dashboards) == {d["uid"] for d in dashboards()}
    for entry in grafana.dashboards.values():
        assert entry["folderUid"] == "infermeter"
        variable = entry["dashboard"]["templating"]["list"][0]
        assert variable["current"]["value"] == "infermeter-prometheus"
    assert [a for _, _, a in report.actions] == ["created"] * (2 + len(dashboards()))


def test_push_twice_leaves_one_copy_in_the_same_state(grafana: FakeGrafana) -> None:
    push_dashboards(_target(grafana))
    state = json.dumps([grafana.folders, grafana.datasources, grafana.dashboards], sort_keys=True)
    writes_before = len(grafana.writes())

    report = push_dashboards(_target(grafana))

    assert report.changed() == 0
    assert len(grafana.writes()) == writes_before  # nothing rewritten, no version churn
    assert (
        json.dumps([grafana.folders, grafana.datasources, grafana.dashboards], sort_keys=True)
        == state
    )
    assert len(grafana.dashboards) == len(dashboards()) and len(grafana.folders) == 1
    assert len(grafana.datasources) == 1


def test_push_repairs_drifted_objects(grafana: FakeGrafana) -> None:
    push_dashboards(_target(grafana))
    grafana.folders["infermeter"]["title"] = "renamed by hand"
    grafana.dashboards["infermeter-drift"]["dashboard"]["panels"] = []

    report = push_dashboards(_target(grafana, prometheus_url="http://other:9090"))

    changed = {(kind, name) for kind, name, action in report.actions if action == "updated"}
    assert changed == {
        ("folder", "infermeter"),
        ("datasource", "infermeter-prometheus"),
        ("dashboard", "infermeter-drift"),
    }
    assert grafana.folders["infermeter"]["title"] == "infermeter"
    assert grafana.datasources["infermeter-prometheus"]["url"] == "http://other:9090"
    assert grafana.dashboards["infermeter-drift"]["dashboard"]["panels"]
    assert len(grafana.dashboards) == len(dashboards())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_push_uses_grafana_env(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.setenv("GRAFANA_TOKEN", ADMIN_TOKEN)
    code, out, err = _run(capsys, "dashboards", "push", "--prometheus-url", "http://p:9090")
    assert code == 0
    assert "created   dashboard infermeter-overview" in out
    assert f"{2 + len(dashboards())} changed" in err
    assert ADMIN_TOKEN not in out + err


@pytest.mark.parametrize(
    ("token", "path", "expected"),
    [
        ("wrong-token", "", "rejected the credentials (401 Unauthorized)"),
        (VIEWER_TOKEN, "", "403 Forbidden"),
        (ADMIN_TOKEN, "/not-grafana", "Grafana API not found at"),
    ],
    ids=["401", "403", "404"],
)
def test_cli_push_errors_are_one_line(
    grafana: FakeGrafana,
    capsys: pytest.CaptureFixture[str],
    token: str,
    path: str,
    expected: str,
) -> None:
    code, _, err = _run(
        capsys, "dashboards", "push", "--grafana-url", grafana.url + path, "--token", token
    )
    assert code == 1
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and token not in err
    assert grafana.dashboards == {}


def test_cli_push_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    code, _, err = _run(
        capsys,
        "dashboards",
        "push",
        "--grafana-url",
        f"http://127.0.0.1:{port}",
        "--token",
        ADMIN_TOKEN,
    )
    assert code == 1
    assert err.strip() == (
        f"infermeter dashboards: error: cannot connect to Grafana at "
        f"http://127.0.0.1:{port}: connection refused"
    )


def test_cli_push_without_credentials_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    code, _, err = _run(capsys, "dashboards", "push", "--grafana-url", "http://127.0.0.1:1")
    assert code == 2
    assert "GRAFANA_TOKEN" in err


def test_push_keeps_password_out_of_messages(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = _run(
        capsys, "dashboards", "push", "--grafana-url", f"http://admin:s3cret@127.0.0.1:{port}"
    )
    assert code == 1
    assert "s3cret" not in err and f"127.0.0.1:{port}" in err


def test_export_writes_file_provisioning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], load_schema: object
) -> None:
    code, out, _ = _run(
        capsys,
        "dashboards",
        "export",
        "--out",
        str(tmp_path),
        "--prometheus-url",
        "http://prom:9090",
    )
    assert code == 0
    datasources = yaml.safe_load(
        (tmp_path / "provisioning/datasources/infermeter.yaml").read_text()
    )
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert (ds["uid"], ds["type"], ds["url"]) == (
        "infermeter-prometheus",
        "prometheus",
        "http://prom:9090",
    )
    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/infermeter.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["folderUid"] == "infermeter"
    files = sorted((tmp_path / "dashboards").glob("*.json"))
    assert [f.stem for f in files] == sorted(d["uid"] for d in dashboards())
    assert len(out.splitlines()) == 2 + len(dashboards())
    board = json.loads(files[0].read_text())
    assert board["templating"]["list"][0]["current"]["value"] == "infermeter-prometheus"
