"""The `state:` and `cluster:` sections and `mqtt.shared_group`: defaults and FILE:LINE errors."""

from __future__ import annotations

from pathlib import Path

from pipelined.config import load_config
from tests.config.support import problems_of, write

FUNCTION = """functions:
  f: {handler: app.handler, code: fn}
"""


def test_defaults_keep_sqlite_and_a_ten_second_lease(project: Path) -> None:
    config = load_config(write(project, FUNCTION))
    assert config.state.url is None
    assert config.cluster.lease_duration == 10.0 and config.cluster.renew_every == 10.0 / 3
    assert config.mqtt.shared_group is None


def test_a_shared_state_with_its_cluster_settings(project: Path) -> None:
    path = write(
        project,
        'state: {url: "postgresql://app@db:5432/pipelined"}\n'
        "cluster: {member_id: worker-1, lease_duration: 2s, renew_interval: 500ms}\n"
        "mqtt: {shared_group: workers}\n" + FUNCTION,
    )
    config = load_config(path)
    assert config.state.url == "postgresql://app@db:5432/pipelined"
    assert (config.cluster.member_id, config.cluster.renew_every) == ("worker-1", 0.5)
    assert config.mqtt.shared_group == "workers"


def test_bad_state_and_cluster_settings_name_their_line(project: Path) -> None:
    path = write(
        project,
        'state: {url: "mysql://db/x"}\ncluster: {lease_duration: 1s}\nmqtt: {shared_group: "a/b"}\n'
        + FUNCTION,
    )
    problems = "\n".join(problems_of(path))
    assert "pipelined.yaml:1: state.url: must be a postgresql:// URL, got scheme 'mysql'" in problems
    assert "pipelined.yaml:2: cluster.lease_duration:" in problems
    assert "pipelined.yaml:3: mqtt.shared_group: must be a name without / + # or $" in problems


def test_renew_interval_must_be_shorter_than_the_lease(project: Path) -> None:
    path = write(project, "cluster: {lease_duration: 3s, renew_interval: 3s}\n" + FUNCTION)
    assert any("renew_interval (3s) must be shorter than lease_duration (3s)" in p for p in problems_of(path))
