"""The reload plan: what a config change starts, stops and rebuilds, decided without any I/O."""

from __future__ import annotations

from typing import Any

from pipelined.app.reload import plan_reload, wanted_runners
from pipelined.config import Config
from tests.support import TEST_FUNCTIONS


def config(**functions: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "functions": {
                name: {"code": str(TEST_FUNCTIONS), "handler": "handlers.record", **fn}
                for name, fn in functions.items()
            }
        }
    )


TICK = {"type": "schedule", "name": "tick", "expression": "rate(1 minute)"}
QUEUE = {"type": "sqs", "name": "q", "queue": "orders"}


def running(cfg: Config) -> tuple[dict[str, Any], dict[Any, Any]]:
    return {n: f for n, f in cfg.functions.items()}, wanted_runners(cfg)


def test_start_up_builds_every_function_and_starts_every_enabled_source() -> None:
    cfg = config(a={"events": [TICK, {**QUEUE, "enabled": False}]}, b={})
    plan = plan_reload(None, cfg, {}, {})
    assert plan.build == {"a", "b"} and plan.retire == frozenset() and plan.stop == ()
    assert [key for key, _ in plan.start] == [("a", "tick")]
    assert not plan.aws_changed


def test_an_unchanged_config_touches_nothing() -> None:
    cfg = config(a={"events": [TICK, QUEUE]})
    plan = plan_reload(cfg, cfg, *running(cfg))
    assert (plan.build, plan.retire, plan.stop, plan.start) == (frozenset(), frozenset(), (), ())


def test_a_changed_source_restarts_only_that_source() -> None:
    old = config(a={"events": [TICK, QUEUE]})
    new = config(a={"events": [{**TICK, "expression": "rate(5 minutes)"}, QUEUE]})
    plan = plan_reload(old, new, *running(old))
    assert plan.build == frozenset() and plan.stop == (("a", "tick"),)
    assert [key for key, _ in plan.start] == [("a", "tick")]


def test_a_changed_function_is_rebuilt_and_all_its_sources_restart() -> None:
    old = config(a={"events": [TICK, QUEUE]}, b={"events": [TICK]})
    new = config(a={"events": [TICK, QUEUE], "environment": {"X": "1"}}, b={"events": [TICK]})
    plan = plan_reload(old, new, *running(old))
    assert plan.build == {"a"} and plan.retire == {"a"}
    assert set(plan.stop) == {("a", "tick"), ("a", "q")}
    assert {key for key, _ in plan.start} == {("a", "tick"), ("a", "q")}


def test_removed_functions_and_sources_are_stopped_and_retired() -> None:
    old = config(a={"events": [TICK, QUEUE]}, b={"events": [TICK]})
    new = config(a={"events": [TICK]})
    plan = plan_reload(old, new, *running(old))
    assert plan.retire == {"b"} and plan.build == frozenset()
    assert set(plan.stop) == {("a", "q"), ("b", "tick")} and plan.start == ()


def test_new_aws_settings_rebuild_everything() -> None:
    old = config(a={"events": [TICK]})
    new = old.model_copy(update={"aws": old.aws.model_copy(update={"region": "eu-west-1"})})
    plan = plan_reload(old, new, *running(old))
    assert plan.aws_changed and plan.build == {"a"} and plan.stop == (("a", "tick"),)
