"""The dashboards as code: schema-valid, every query from the catalogue, variables wired."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from infermeter.dashboards import Catalog, dashboards
from infermeter.dashboards._panels import DATASOURCE

BOARDS = dashboards()
IDS = [board["uid"] for board in BOARDS]
METRIC_NAME = re.compile(r"\binfermeter_[a-z0-9_]+\b")


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_the_dashboards_of_the_issues_exist() -> None:
    titles = [board["title"] for board in BOARDS]
    assert titles == [
        "infermeter / AI workload overview",
        "infermeter / Unit economics",
        "infermeter / Runtime rebalancing",
        "infermeter / Drift",
        "infermeter / Quality",
    ]
    assert len(set(IDS)) == 5


@pytest.mark.parametrize("board", BOARDS, ids=IDS)
def test_dashboard_validates_against_grafana_schema(
    board: dict[str, Any], load_schema: Callable[[str], dict[str, Any]]
) -> None:
    schema = load_schema("dashboard.jsonschema.json")
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(board)
    ]
    assert errors == []


@pytest.mark.parametrize("board", BOARDS, ids=IDS)
def test_panel_targets_and_timeseries_options_validate(
    board: dict[str, Any], load_schema: Callable[[str], dict[str, Any]]
) -> None:
    prometheus = jsonschema.Draft7Validator(load_schema("prometheus.jsonschema.json"))
    timeseries = load_schema("timeseries.jsonschema.json")
    options = jsonschema.Draft7Validator({**timeseries, "$ref": "#/definitions/Options"})
    custom = jsonschema.Draft7Validator({**timeseries, "$ref": "#/definitions/FieldConfig"})
    for panel in _panels(board):
        for target in panel["targets"]:
            assert list(prometheus.iter_errors(target)) == [], (panel["title"], target)
        if panel["type"] == "timeseries":
            assert list(options.iter_errors(panel["options"])) == [], panel["title"]
            field_custom = panel["fieldConfig"]["defaults"]["custom"]
            assert list(custom.iter_errors(field_custom)) == [], panel["title"]


@pytest.mark.parametrize("board", BOARDS, ids=IDS)
def test_every_panel_is_described_and_unit_set(board: dict[str, Any]) -> None:
    for panel in _panels(board):
        assert len(panel["description"]) > 60, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"] == DATASOURCE
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize("board", BOARDS, ids=IDS)
def test_queries_only_use_catalogue_metrics(board: dict[str, Any]) -> None:
    known = {spec.name for spec in Catalog.all()}
    for panel in _panels(board):
        for target in panel["targets"]:
            used = set(METRIC_NAME.findall(target["expr"]))
            assert used, target["expr"]
            assert used <= known, used - known


@pytest.mark.parametrize("board", BOARDS, ids=IDS)
def test_queries_reference_only_defined_variables(board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    builtins = {"__rate_interval", "__range", "__interval"}
    texts = [t["expr"] for p in _panels(board) for t in p["targets"]]
    texts += [v.get("query", "") for v in board["templating"]["list"]]
    for text in texts:
        for name in re.findall(r"\$(\w+)", text):
            assert name in defined | builtins, (name, text)


def test_grid_positions_do_not_overlap() -> None:
    for board in BOARDS:
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, (board["uid"], panel["title"])
            taken |= cells


def test_filterable_dashboards_have_the_issue_variables() -> None:
    by_uid = {board["uid"]: board for board in BOARDS}
    for uid in ("infermeter-overview", "infermeter-unit-economics"):
        names = {v["name"] for v in by_uid[uid]["templating"]["list"]}
        assert {"datasource", "model", "endpoint", "runtime", "tenant"} <= names
    for board in BOARDS:
        variables = board["templating"]["list"]
        assert variables[0]["type"] == "datasource"
        for variable in variables[1:]:
            assert variable["allValue"] == ".*"  # "All" also matches series without the label
            assert variable["query"].startswith("label_values(")


def test_thresholds_come_from_the_catalogue() -> None:
    overview = BOARDS[0]
    cold = next(
        p
        for p in overview["panels"]
        if p["title"] == "Cold-start ratio" and p["type"] == "timeseries"
    )
    steps = cold["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [
        None,
        Catalog.WORKLOAD_COLD_START_RATIO.warn,
        Catalog.WORKLOAD_COLD_START_RATIO.critical,
    ]
