"""Grafana dashboards as data: rows of panels of PromQL queries, and their JSON model.

The TaskManager's dashboard (dashboard.py) and the operator's own (operator_dashboard.py) are
both written with these, so every query of either can be listed and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
Unit = Literal["reqps", "percentunit", "s", "short", "bytes", "none"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    # "app": the API's own series and our recording rules; "kubernetes": exporters' series.
    source: Literal["app", "kubernetes"] = "app"
    # Heatmaps read buckets: Grafana needs the query formatted as such.
    heatmap: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: Literal["timeseries", "stat", "heatmap"]
    queries: tuple[Query, ...]
    unit: Unit = "short"
    description: str = ""
    width: int = 8
    thresholds: tuple[tuple[float, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def grafana_json(
    dashboard_uid: str, title: str, tags: list[str], rows: list[Row]
) -> dict[str, Any]:
    """A dashboard's JSON model: rows of panels laid out left to right, top to bottom."""
    panels: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for row in rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        for panel in row.panels:
            height = 4 if panel.kind == "stat" else 8
            if x + panel.width > 24:
                x, y = 0, y + height
            panels.append(_panel(panel, next_id, {"h": height, "w": panel.width, "x": x, "y": y}))
            next_id += 1
            x += panel.width
        y += 8
    return {
        "uid": dashboard_uid,
        "title": title,
        "tags": tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def _panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            **({"format": "heatmap"} if query.heatmap else {}),
        }
        for index, query in enumerate(panel.queries)
    ]
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"value": None if index == 0 else value, "color": color}
                for index, (value, color) in enumerate(panel.thresholds)
            ],
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
        "targets": targets,
    }
