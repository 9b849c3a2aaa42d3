"""One function's configuration: its code and handler, limits, environment, isolation and events."""

from __future__ import annotations

from importlib.machinery import ModuleSpec, PathFinder
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from pipelined.config import runtimes
from pipelined.config.api import AsyncInvokeConfig, Permission
from pipelined.config.events import DestinationConfig, EventSourceConfig
from pipelined.config.runtimes import RuntimeName
from pipelined.config.types import IDENTIFIER, ConfigModel, DirPath, Duration, FieldValueError, matches


def _env_value(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _find_module(module: str, paths: list[str]) -> bool:
    """Whether ``module`` (maybe dotted) is importable from ``paths``, without importing anything."""
    search: list[str] | None = paths
    spec: ModuleSpec | None = None
    for part in module.split("."):
        if search is None:
            return False
        # The bare name keeps namespace packages from looking up their (unimported) parent.
        spec = PathFinder.find_spec(part, search)
        search = list(spec.submodule_search_locations or []) or None if spec else None
    return spec is not None and spec.origin is not None  # a namespace package has no origin


_python_handler = matches(rf"{IDENTIFIER}(\.{IDENTIFIER})+", "'module.function'")
EnvName = Annotated[str, AfterValidator(matches(IDENTIFIER, "a valid environment variable name"))]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
FunctionName = Annotated[
    str, AfterValidator(matches(r"[A-Za-z0-9_-]{1,64}", "1-64 letters, digits, '_' or '-'"))
]
# An IAM role ARN, as Lambda's CreateFunction validates it (the partition may be aws-cn, aws-us-gov, ...).
RoleArn = Annotated[
    str,
    AfterValidator(
        matches(
            r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
            "a role ARN: arn:aws:iam::ACCOUNT:role/NAME",
        )
    ),
]
# process (the default): warm worker processes, one invocation at a time each, as Lambda's execution
# environments; inline: inside the daemon, for trusted concurrency-safe handlers (docs/isolation.md).
Isolation = Literal["inline", "process"]


class FunctionConfig(ConfigModel):
    """One entry of `functions`: where the handler lives, how it runs and which events invoke it."""

    # code, layers and runtime come before handler so the handler check can see them.
    code: DirPath
    layers: list[DirPath] = Field(default_factory=list)
    # None: the daemon's Python. Node.js and `provided` run through the Runtime API (docs/runtimes.md).
    runtime: RuntimeName | None = None
    handler: str
    timeout: Duration = Field(default=3.0, ge=1, le=900)
    memory_mb: int = Field(default=128, ge=128, le=10240)
    environment: dict[EnvName, EnvValue] = Field(default_factory=dict)
    # The execution role the daemon assumes for the function (None: the daemon's own credentials).
    role: RoleArn | None = None
    reserved_concurrency: int | None = Field(default=None, ge=0)
    # None until Config resolves it from the top-level `isolation`.
    isolation: Isolation | None = None
    provisioned_concurrency: int = Field(default=0, ge=0)
    # Node.js functions: the `node` executable; None until Config resolves it from the top-level `node`.
    node: str | None = None
    idle_timeout: Duration = Field(default=300.0, ge=0, le=86400)
    on_failure: DestinationConfig | None = None
    events: list[EventSourceConfig] = Field(default_factory=list)
    # The Lambda API (docs/api.md): None lets every configured credential call the function.
    permissions: list[Permission] | None = None
    async_: AsyncInvokeConfig = Field(default=AsyncInvokeConfig(), alias="async")
    # active: each invocation is a span sent to tracing.otlp_endpoint (config/tracing.py).
    tracing: Literal["active", "pass_through"] = "pass_through"

    @field_validator("handler")
    @classmethod
    def _handler_module(cls, value: str, info: ValidationInfo) -> str:
        code, layers = info.data.get("code"), info.data.get("layers")
        check_files = (info.context or {}).get("check_files") and code is not None and layers is not None
        kind = runtimes.family(info.data.get("runtime"))
        if kind != "python":
            problem = (
                runtimes.node_handler_problem(value)
                if kind == "nodejs"
                else runtimes.provided_handler_problem(value)
            )
            if problem is None and check_files and code is not None and layers is not None:
                problem = (
                    runtimes.node_module_problem(value, code)
                    if kind == "nodejs"
                    else runtimes.bootstrap_problem(code, layers)
                )
            if problem is not None:
                raise ValueError(problem)
            return value
        _python_handler(value)
        if check_files and code is not None and layers is not None:
            module = value.rpartition(".")[0]
            if not _find_module(module, [str(code), *map(str, layers)]):
                where = ", ".join([str(code), *map(str, layers)])
                raise ValueError(f"module {module!r} not found in {where}")
        return value

    @field_validator("events")
    @classmethod
    def _event_names(cls, events: list[EventSourceConfig]) -> list[EventSourceConfig]:
        named = [
            e if e.name else e.model_copy(update={"name": f"{e.type}-{i}"}) for i, e in enumerate(events)
        ]
        seen: dict[str | None, int] = {}
        for index, event in enumerate(named):
            if event.name in seen:
                raise FieldValueError(
                    (index, "name"), f"duplicate event name {event.name!r} (also events[{seen[event.name]}])"
                )
            seen[event.name] = index
        return named

    @model_validator(mode="after")
    def _provisioned_within_reserved(self) -> FunctionConfig:
        reserved = self.reserved_concurrency
        if reserved is not None and self.provisioned_concurrency > reserved:
            raise FieldValueError(
                ("provisioned_concurrency",), f"must not exceed reserved_concurrency ({reserved})"
            )
        return self

    @property
    def module_name(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def attribute_name(self) -> str:
        return self.handler.rpartition(".")[2]
