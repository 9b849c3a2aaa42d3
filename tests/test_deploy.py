"""deploy/: the Prometheus alert rules and the Grafana dashboard use only what the daemon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT, write_config

DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "pipelined.json"
SAMPLE_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}


def _promtool() -> str:
    # `make test` installs Debian's prometheus package (which has promtool) where it is missing.
    found = shutil.which("promtool")
    assert found, "promtool not found: install Debian's prometheus package (make test does)"
    return found


def _exported_names(daemon: Any, tmp_path: Path) -> set[str]:
    """Every sample name the daemon's /metrics can carry, from its # TYPE lines (counters: with _total)."""
    proc = daemon(write_config(tmp_path, {"idle": {"handler": "handlers.record"}}))
    status, body = proc.get("/metrics")
    assert status == 200
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.MULTILINE):
        names.update(name + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ("",)))
    return names


def _queries() -> dict[str, str]:
    """Every PromQL expression of the alert rules and of the dashboard, by where it is."""
    found = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable {variable['name']}"] = variable["query"]["query"]
    return found


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"], capture_output=True, text=True, cwd=ALERTS.parent
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_metric_a_query_uses_is_one_the_daemon_exports(daemon, tmp_path: Path) -> None:
    exported = _exported_names(daemon, tmp_path)
    assert {
        "pipelined_invocations_total",
        "pipelined_duration_seconds_bucket",
        "pipelined_dead_letters",
    } <= exported
    queries = _queries()
    assert len(queries) >= 20
    for where, expr in queries.items():
        used = set(re.findall(r"\bpipelined_[a-z_]+\b", expr))
        assert used or "up{" in expr, f"{where}: uses no pipelined metric: {expr}"
        assert used <= exported, f"{where}: {sorted(used - exported)} not exported by the daemon"


def test_dashboard_is_a_grafana_dashboard_with_one_panel_per_figure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pipelined" and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    titles = {p["title"] for p in panels}
    for figure in (
        "Invocations",
        "Errors",
        "Throttles",
        "Duration p50 / p99",
        "Concurrent executions",
        "Iterator age",
        "Dead-letter store",
        "Async queue: depth and age p99",
        "Source health",
    ):
        assert figure in titles
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    # Panels never overlap on Grafana's 24-column grid.
    cells = set()
    for panel in panels:
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area
