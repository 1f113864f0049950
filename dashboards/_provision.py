"""Provisioning the dashboards: push through Grafana's HTTP API, or export files for
Grafana's file provisioning (``/etc/grafana/provisioning``).

Both render the same dashboards with the datasource variable defaulting to the data
source infermeter provisions, so a pushed and a file-provisioned Grafana look the same.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from infermeter.dashboards._dashboards import dashboards
from infermeter.dashboards._panels import DATASOURCE_VARIABLE, Json
from infermeter.dashboards.grafana import (
    DATASOURCE_NAME,
    GrafanaTarget,
    PushReport,
    connect,
    datasource_body,
    ensure_datasource,
    ensure_folder,
    grafana_errors,
    is_not_found,
)

__all__ = [
    "DEFAULT_GRAFANA_DASHBOARDS_PATH",
    "export_dashboards",
    "push_dashboards",
    "rendered_dashboards",
]

DEFAULT_GRAFANA_DASHBOARDS_PATH: Final = "/var/lib/grafana/dashboards/infermeter"
_MESSAGE: Final = "provisioned by infermeter"
# Keys Grafana owns on a stored dashboard; they never count as a difference.
_SERVER_KEYS: Final = ("id", "version")


def rendered_dashboards(datasource_uid: str) -> list[Json]:
    """The dashboards with their datasource variable defaulting to ``datasource_uid``."""
    out = []
    for built in dashboards():
        board = copy.deepcopy(built)
        for variable in board["templating"]["list"]:
            if variable["name"] == DATASOURCE_VARIABLE:
                variable["current"] = {
                    "selected": True,
                    "text": DATASOURCE_NAME,
                    "value": datasource_uid,
                }
        out.append(board)
    return out


def _without_server_keys(board: Json) -> Json:
    return {k: v for k, v in board.items() if k not in _SERVER_KEYS}


def _same(stored: Json, desired: Json) -> bool:
    return _without_server_keys(stored) == _without_server_keys(desired)


def push_dashboards(target: GrafanaTarget, *, api: Any = None) -> PushReport:
    """Provision folder, Prometheus data source and dashboards; idempotent.

    ``api`` is a grafana-client ``GrafanaApi`` (made from ``target`` when omitted).
    Raises ``ValueError`` / ``OSError`` with a one-line message on failure.
    """
    api = api if api is not None else connect(target)
    report = PushReport()
    with grafana_errors(target, "provisioning the folder"):
        ensure_folder(api, target, report)
    with grafana_errors(target, "provisioning the Prometheus data source"):
        ensure_datasource(api, target, report)
    for board in rendered_dashboards(target.datasource_uid):
        with grafana_errors(target, f"saving dashboard {board['uid']}"):
            _push_dashboard(api, target, board, report)
    return report


def _push_dashboard(api: Any, target: GrafanaTarget, board: Json, report: PushReport) -> None:
    try:
        current = api.dashboard.get_dashboard(board["uid"])
    except Exception as exc:
        if not is_not_found(exc):
            raise
        current = None
    if current is not None:
        in_folder = current.get("meta", {}).get("folderUid") == target.folder_uid
        if in_folder and _same(current["dashboard"], board):
            report.add("dashboard", board["uid"], "unchanged")
            return
    api.dashboard.update_dashboard(
        {
            "dashboard": board,
            "folderUid": target.folder_uid,
            "overwrite": True,
            "message": _MESSAGE,
        }
    )
    report.add("dashboard", board["uid"], "created" if current is None else "updated")


def export_dashboards(
    out: str | Path,
    *,
    prometheus_url: str,
    datasource_uid: str = "infermeter-prometheus",
    folder_title: str = "infermeter",
    folder_uid: str = "infermeter",
    grafana_dashboards_path: str = DEFAULT_GRAFANA_DASHBOARDS_PATH,
) -> list[Path]:
    """Write Grafana file-provisioning YAML and the dashboard JSON under ``out``:

    ``provisioning/datasources/infermeter.yaml``, ``provisioning/dashboards/infermeter.yaml``
    and ``dashboards/<uid>.json``. Copy ``provisioning/*`` into Grafana's provisioning
    directory and ``dashboards/`` to ``grafana_dashboards_path`` on the Grafana host.
    Returns the files written.
    """
    import yaml

    root = Path(out)
    target = GrafanaTarget(
        grafana_url="",
        token="",
        prometheus_url=prometheus_url,
        folder_uid=folder_uid,
        folder_title=folder_title,
        datasource_uid=datasource_uid,
        timeout=0,
    )
    datasource = {k: v for k, v in datasource_body(target).items() if k != "basicAuth"}
    datasource["editable"] = False
    datasources = {"apiVersion": 1, "datasources": [datasource]}
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "infermeter",
                "orgId": 1,
                "folder": folder_title,
                "folderUid": folder_uid,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": grafana_dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    header = "# Written by `infermeter dashboards export`; Grafana file provisioning.\n"
    write(
        root / "provisioning" / "datasources" / "infermeter.yaml",
        header + yaml.safe_dump(datasources, sort_keys=False),
    )
    write(
        root / "provisioning" / "dashboards" / "infermeter.yaml",
        header + yaml.safe_dump(providers, sort_keys=False),
    )
    for board in rendered_dashboards(datasource_uid):
        write(
            root / "dashboards" / f"{board['uid']}.json",
            json.dumps(board, indent=2, sort_keys=False) + "\n",
        )
    return written


def dashboard_uids() -> Sequence[str]:
    return [board["uid"] for board in dashboards()]
