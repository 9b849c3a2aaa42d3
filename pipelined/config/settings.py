"""The top-level sections of the file (http, aws, mqtt, logging, metrics) and :class:`Config`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ByteSize,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelined.config import runtimes
from pipelined.config.api import ApiConfig
from pipelined.config.cluster import ClusterConfig, StateConfig
from pipelined.config.eventbridge import BusName, EventBridgeSource, EventBusConfig
from pipelined.config.events import EVENT_SOURCE_CLASSES
from pipelined.config.functions import FunctionConfig, FunctionName, Isolation
from pipelined.config.gateway import GatewayConfig, check_routes
from pipelined.config.tracing import TracingConfig, check_tracing, tracing_installed
from pipelined.config.types import (
    ConfigModel,
    ConfigPath,
    Duration,
    FieldValueError,
    FilePath,
    listen_address,
    listen_host,
    matches,
)


class HttpConfig(ConfigModel):
    """Where the HTTP endpoint (/metrics, /healthz, /readyz) listens, as 'host:port'."""

    listen: str = "127.0.0.1:9108"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return listen_address(value)

    @property
    def host(self) -> str:
        return listen_host(self.listen)

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _http_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


class AwsConfig(ConfigModel):
    """The AWS region, and an endpoint URL for a local AWS-compatible server (empty means AWS itself)."""

    region: Annotated[str, AfterValidator(matches(r"[a-z0-9-]+", "an AWS region such as 'us-east-1'"))] = (
        "us-east-1"
    )
    endpoint_url: Annotated[
        str | None, BeforeValidator(lambda v: None if v == "" else v), AfterValidator(_http_url)
    ] = None
    # The account in every ARN pipelined makes; None: the endpoint's own (STS GetCallerIdentity).
    account_id: (
        Annotated[
            str,
            BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
            AfterValidator(matches(r"\d{12}", "an account id of 12 digits (quoted in YAML)")),
        ]
        | None
    ) = None


class MqttConfig(ConfigModel):
    """The MQTT broker the mqtt sources (and S3 notifications via MQTT) subscribe to."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "pipelined"
    username: str | None = None
    password: str | None = None
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    keepalive: Duration = Field(default=60.0, ge=0, le=65535)
    # Several daemons subscribe as one MQTT 5 shared subscription ($share/NAME/topic): the broker splits.
    shared_group: Annotated[str, AfterValidator(matches(r"[^/+#$]+", "a name without / + # or $"))] | None = (
        None
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "ws", "wss"):
            raise ValueError(f"scheme must be mqtt, mqtts, ws or wss, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"invalid port in {value!r}") from None
        if not parts.hostname:
            raise ValueError(f"missing host in {value!r}")
        return value


class LogStoreConfig(ConfigModel):
    """Every invocation's lines kept per function in STATE_DIR/logs, for `pipelined logs`."""

    enabled: bool = True
    # Per function: a file this big is rotated (one old file is kept), so at most about twice this.
    max_size: ByteSize = Field(default=ByteSize(10 * 1024 * 1024), ge=64 * 1024)
    retention: Duration = Field(default=7 * 86400.0, gt=0)


class LoggingConfig(ConfigModel):
    """The daemon's log level and format (text for people, json for collectors)."""

    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    format: Literal["text", "json"] = "text"
    # The local log store behind `pipelined logs` (docs/operations.md, "Logs").
    store: LogStoreConfig = LogStoreConfig()


class MetricsConfig(ConfigModel):
    """Metrics beyond pipelined's own: the Embedded Metric Format blobs handlers print."""

    # Export EMF blobs (powertools Metrics, aws-embedded-metrics) printed by handlers on /metrics.
    emf: bool = True
    # Series (label sets) per EMF metric; new label sets beyond it are dropped, with one warning.
    emf_max_series: int = Field(default=1000, ge=1)


class Config(ConfigModel):
    """The whole configuration file: settings, sections and the functions with their events."""

    state_dir: ConfigPath = Field(default=Path(".pipelined"), validate_default=True)
    state: StateConfig = StateConfig()
    cluster: ClusterConfig = ClusterConfig()
    shutdown_timeout: Duration = Field(default=30.0, ge=0)
    http: HttpConfig = HttpConfig()
    aws: AwsConfig = AwsConfig()
    mqtt: MqttConfig = MqttConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    gateway: GatewayConfig = GatewayConfig()
    api: ApiConfig = ApiConfig()
    tracing: TracingConfig = TracingConfig()
    # EventBridge buses besides `default` (which always exists; list it to give it an archive).
    event_buses: dict[BusName, EventBusConfig] = Field(default_factory=dict)
    # The default for functions without their own `isolation` (declared before `functions` for it):
    # process, one invocation at a time per worker, as one Lambda execution environment (issue 10).
    isolation: Isolation = "process"
    # The Node.js executable for nodejs* functions without their own `node`: a path or a name on PATH.
    node: str = "node"
    functions: dict[FunctionName, FunctionConfig]
    source_path: Path = Field(default_factory=lambda: Path("pipelined.yaml").absolute())

    @field_validator("functions")
    @classmethod
    def _some(cls, functions: dict[str, FunctionConfig]) -> dict[str, FunctionConfig]:
        if not functions:
            raise ValueError("define at least one function")
        return functions

    @field_validator("functions")
    @classmethod
    def _isolation(
        cls, functions: dict[str, FunctionConfig], info: ValidationInfo
    ) -> dict[str, FunctionConfig]:
        default = info.data.get("isolation", "process")
        resolved: dict[str, FunctionConfig] = {}
        for name, declared in functions.items():
            # Node.js and `provided` functions are programs of their own: always worker processes.
            own_default = default if runtimes.family(declared.runtime) == "python" else "process"
            function = (
                declared if declared.isolation else declared.model_copy(update={"isolation": own_default})
            )
            if function.provisioned_concurrency and function.isolation != "process":
                raise FieldValueError(
                    (name, "provisioned_concurrency"),
                    "needs isolation: process (an inline function has no workers to start ahead)",
                )
            if function.role and function.isolation != "process":
                raise FieldValueError(
                    (name, "role"),
                    "needs isolation: process (inline handlers share the daemon's process, and boto3 "
                    "resolves its credentials once per process)",
                )
            resolved[name] = function
        return resolved

    @field_validator("functions")
    @classmethod
    def _routes(cls, functions: dict[str, FunctionConfig]) -> dict[str, FunctionConfig]:
        check_routes(functions)  # two HTTP routes no request can tell apart
        return functions

    @model_validator(mode="after")
    def _rule_buses(self) -> Config:
        for function_name, function in self.functions.items():
            for index, source in enumerate(function.events):
                if not isinstance(source, EventBridgeSource) or source.bus == "default":
                    continue
                if source.bus not in self.event_buses:
                    raise FieldValueError(
                        ("functions", function_name, "events", index, "bus"),
                        f"no event bus named {source.bus!r} in event_buses",
                    )
        return self

    @model_validator(mode="after")
    def _tracing(self) -> Config:
        if any(f.tracing == "active" for f in self.functions.values()):
            check_tracing(self.tracing, self.functions, tracing_installed())
        return self

    @model_validator(mode="after")
    def _api_references(self) -> Config:
        names = {c.name for c in self.api.credentials}
        for function_name, function in self.functions.items():
            for index, permission in enumerate(function.permissions or []):
                if permission.principal != "*" and permission.principal not in names:
                    raise FieldValueError(
                        ("functions", function_name, "permissions", index, "principal"),
                        f"no credential named {permission.principal!r} in api.credentials",
                    )
            destinations = function.async_.destinations
            for which in ("on_success", "on_failure"):
                target = getattr(destinations, which)
                if target is None or target.kind != "function":
                    continue
                if target.function_name not in self.functions:
                    raise FieldValueError(
                        ("functions", function_name, "async", "destinations", which, "destination"),
                        f"no function named {target.function_name!r}",
                    )
        return self

    @field_validator("functions")
    @classmethod
    def _runtimes(
        cls, functions: dict[str, FunctionConfig], info: ValidationInfo
    ) -> dict[str, FunctionConfig]:
        node = info.data.get("node", "node")
        check_files = (info.context or {}).get("check_files")
        resolved: dict[str, FunctionConfig] = {}
        for name, declared in functions.items():
            function, kind = declared, runtimes.family(declared.runtime)
            if kind != "python" and function.isolation != "process":
                raise FieldValueError(
                    (name, "isolation"),
                    f"a {function.runtime} function always runs in worker processes "
                    "(remove `isolation` or set it to process)",
                )
            if kind == "nodejs" and declared.runtime is not None:
                executable = declared.node or node
                function = declared.model_copy(update={"node": executable})
                problem = runtimes.node_problem(executable, declared.runtime) if check_files else None
                if problem is not None:
                    field = "node" if "node" in declared.model_fields_set else "runtime"
                    raise FieldValueError((name, field), problem)
            resolved[name] = function
        return resolved

    def summary(self) -> str:
        """E.g. "2 functions, 3 event sources (2 schedule, 1 sqs)"."""
        counts: Counter[str] = Counter(e.type for f in self.functions.values() for e in f.events)
        total = sum(counts.values())
        text = f"{_plural(len(self.functions), 'function')}, {_plural(total, 'event source')}"
        if counts:
            text += " (" + ", ".join(f"{counts[t]} {t}" for t in EVENT_SOURCE_CLASSES if counts[t]) + ")"
        return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
