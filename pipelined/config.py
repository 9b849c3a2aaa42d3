"""The YAML configuration file: models, loading, ``${VAR}`` interpolation and readable errors.

:func:`load_config` raises :class:`~pipelined.errors.ConfigError` whose problems are each one line
``FILE:LINE: dotted.field.path: message``, all of them, not just the first.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from pipelined.config_sources import (
    EVENT_SOURCE_CLASSES,
    ConfigModel,
    ConfigPath,
    DestinationConfig,
    DirPath,
    Duration,
    DynamoDBStreamSource,
    EventSourceConfig,
    FieldValueError,
    FilePath,
    KinesisSource,
    MqttSource,
    RetryBackoff,
    S3Source,
    S3Via,
    ScheduleSource,
    SqsSource,
    format_duration,
    matches,
    parse_duration,
)
from pipelined.errors import ConfigError

__all__ = [
    "AwsConfig",
    "Config",
    "DestinationConfig",
    "Duration",
    "DynamoDBStreamSource",
    "EventSourceConfig",
    "FunctionConfig",
    "HttpConfig",
    "KinesisSource",
    "LoggingConfig",
    "MqttConfig",
    "MqttSource",
    "RetryBackoff",
    "S3Source",
    "S3Via",
    "ScheduleSource",
    "SqsSource",
    "load_config",
    "parse_duration",
]


# --- top-level sections ----------------------------------------------------------------------


class HttpConfig(ConfigModel):
    listen: str = "127.0.0.1:9108"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not bare or (":" in host and bare == host):
            raise ValueError(f"expected 'host:port' (IPv6 as '[::1]:port'), got {value!r}")
        if not port.isdigit() or int(port) > 65535:
            raise ValueError(f"port must be a number between 0 and 65535, got {port!r}")
        return value

    @property
    def host(self) -> str:
        host = self.listen.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") else host

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _http_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


class AwsConfig(ConfigModel):
    region: Annotated[str, AfterValidator(matches(r"[a-z0-9-]+", "an AWS region such as 'us-east-1'"))] = (
        "us-east-1"
    )
    endpoint_url: Annotated[
        str | None, BeforeValidator(lambda v: None if v == "" else v), AfterValidator(_http_url)
    ] = None


class MqttConfig(ConfigModel):
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "pipelined"
    username: str | None = None
    password: str | None = None
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    keepalive: Duration = Field(default=60.0, ge=0, le=65535)

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


class LoggingConfig(ConfigModel):
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    format: Literal["text", "json"] = "text"


# --- functions -------------------------------------------------------------------------------


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


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
EnvName = Annotated[str, AfterValidator(matches(_IDENT, "a valid environment variable name"))]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
FunctionName = Annotated[
    str, AfterValidator(matches(r"[A-Za-z0-9_-]{1,64}", "1-64 letters, digits, '_' or '-'"))
]
# inline: the handler runs inside the daemon (fastest); process: in warm worker processes (docs/isolation.md).
Isolation = Literal["inline", "process"]


class FunctionConfig(ConfigModel):
    # code and layers come before handler so the handler check can see them.
    code: DirPath
    layers: list[DirPath] = Field(default_factory=list)
    handler: Annotated[str, AfterValidator(matches(rf"{_IDENT}(\.{_IDENT})+", "'module.function'"))]
    timeout: Duration = Field(default=3.0, ge=1, le=900)
    memory_mb: int = Field(default=128, ge=128, le=10240)
    environment: dict[EnvName, EnvValue] = Field(default_factory=dict)
    reserved_concurrency: int | None = Field(default=None, ge=0)
    # None until Config resolves it from the top-level `isolation`.
    isolation: Isolation | None = None
    provisioned_concurrency: int = Field(default=0, ge=0)
    idle_timeout: Duration = Field(default=300.0, ge=0, le=86400)
    on_failure: DestinationConfig | None = None
    events: list[EventSourceConfig] = Field(default_factory=list)

    @field_validator("handler")
    @classmethod
    def _handler_module(cls, value: str, info: ValidationInfo) -> str:
        code, layers = info.data.get("code"), info.data.get("layers")
        if (info.context or {}).get("check_files") and code is not None and layers is not None:
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


class Config(ConfigModel):
    state_dir: ConfigPath = Field(default=Path(".pipelined"), validate_default=True)
    shutdown_timeout: Duration = Field(default=30.0, ge=0)
    http: HttpConfig = HttpConfig()
    aws: AwsConfig = AwsConfig()
    mqtt: MqttConfig = MqttConfig()
    logging: LoggingConfig = LoggingConfig()
    # The default for functions without their own `isolation` (declared before `functions` for it).
    isolation: Isolation = "inline"
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
        default = info.data.get("isolation", "inline")
        resolved: dict[str, FunctionConfig] = {}
        for name, declared in functions.items():
            function = declared if declared.isolation else declared.model_copy(update={"isolation": default})
            if function.provisioned_concurrency and function.isolation != "process":
                raise FieldValueError(
                    (name, "provisioned_concurrency"),
                    "needs isolation: process (an inline function has no workers to start ahead)",
                )
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


# --- loading ---------------------------------------------------------------------------------

Loc = tuple[str | int, ...]
_VAR = re.compile(r"\$(\$?)\{([^}]*)\}")


@dataclass
class _Document:
    """The YAML tree as plain data, plus the node for every path so errors can name a line."""

    file: str
    values: dict[Loc, yaml.Node] = field(default_factory=dict)
    keys: dict[Loc, yaml.Node] = field(default_factory=dict)
    data: dict[Loc, Any] = field(default_factory=dict)
    failed: set[Loc] = field(default_factory=set)
    problems: list[tuple[int, str]] = field(default_factory=list)
    constructor: yaml.constructor.SafeConstructor = field(default_factory=yaml.constructor.SafeConstructor)

    def problem(self, node: yaml.Node | None, path: Loc, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"{_dotted(path)}: " if path else ""
        self.problems.append((line, f"{self.file}:{line}: {where}{' '.join(message.split())}"))

    def build(self, node: yaml.Node, path: Loc = (), active: frozenset[int] = frozenset()) -> Any:
        self.values[path] = node
        if id(node) in active:
            self.problem(node, path, "recursive YAML alias")
            self.failed.add(path)
            return None
        inner = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
            self.constructor.flatten_mapping(node)  # merged (<<) keys come first; own keys override them
            result: Any = {}
            own_keys: set[Any] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(key_node, path, "mapping keys must be plain scalars")
                    continue
                key = self.constructor.construct_object(key_node)
                if index >= len(node.value) - own:
                    if key in own_keys:
                        self.problem(key_node, (*path, key), "duplicate key")
                    own_keys.add(key)
                if not path and isinstance(key, str) and key.startswith("x-"):
                    continue  # extension keys, e.g. to hold YAML anchors
                self.keys[(*path, key)] = key_node
                result[key] = self.build(value_node, (*path, key), inner)
        elif isinstance(node, yaml.SequenceNode):
            result = [self.build(item, (*path, i), inner) for i, item in enumerate(node.value)]
        elif node.tag == "tag:yaml.org,2002:str":
            result = _VAR.sub(lambda m: self._substitute(m, node, path), node.value)
        else:
            result = self.constructor.construct_object(node, deep=True)
        self.data[path] = result
        return result

    def _substitute(self, match: re.Match[str], node: yaml.Node, path: Loc) -> str:
        escaped, body = match.group(1), match.group(2)
        if escaped:
            return "${" + body + "}"
        name, has_default, default = body.partition(":-")
        value = os.environ.get(name)
        if not re.fullmatch(_IDENT, name):
            self.problem(node, path, f"invalid variable reference {match.group(0)!r}")
        elif has_default and not value:
            return default
        elif value is not None:
            return value
        else:
            self.problem(node, path, f"environment variable {name!r} is not set (use ${{{name}:-default}})")
        self.failed.add(path)
        return match.group(0)

    def add_error(self, error: ErrorDetails) -> None:
        try:
            loc, message = _message(error)
        except Exception:  # a bug in making the message nicer must not hide the problem itself
            loc, message = tuple(error["loc"]), error["msg"]
        path: Loc = ()
        shown: list[str | int] = []
        node: yaml.Node | None = self.values.get(())
        found = True
        for part in loc:
            if part == "[key]":
                node = self.keys.get(path, node)
            elif found and (*path, part) in self.values:
                path = (*path, part)
                shown.append(part)
                node = self.values[path]
                if error["type"] == "extra_forbidden" or not isinstance(node, yaml.ScalarNode):
                    node = self.keys.get(path, node)
            elif found and part in EVENT_SOURCE_CLASSES and _get(self.data.get(path), "type") == part:
                continue  # pydantic's discriminator tag, not a key in the file
            else:
                found = False
                shown.append(part)
        if not any(path[: len(bad)] == bad for bad in self.failed):
            self.problem(node, tuple(shown), message)


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _dotted(path: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value) if isinstance(value, str | int | float) else repr(str(value))
    return text if len(text) <= 60 else text[:57] + "..."


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "datetime": "an ISO 8601 timestamp",
    "path": "a path",
}


def _message(error: ErrorDetails) -> tuple[Loc, str]:
    """A readable message for one pydantic error, and its loc (extended to the field it is about)."""
    kind, loc, value, ctx = error["type"], tuple(error["loc"]), error["input"], error.get("ctx", {})
    allowed = ", ".join(EVENT_SOURCE_CLASSES)
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "extra_forbidden":
        names = [n for n in _model_fields(loc[:-1]) if n != "source_path"]
        close = difflib.get_close_matches(str(loc[-1]), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(names)
        return loc, f"unknown key ({hint})" if names else "unknown key"
    if kind == "union_tag_invalid":
        return (*loc, "type"), f"unknown event source type {ctx['tag']!r}; expected one of: {allowed}"
    if kind == "union_tag_not_found":
        return (*loc, "type"), f"required key is missing (one of: {allowed})"
    if kind == "value_error":
        exc = ctx["error"]
        return (*loc, *getattr(exc, "field", ())), str(exc)
    if kind == "literal_error":
        return loc, f"must be one of {ctx['expected']}, got {_describe(value)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return loc, _range_message(loc, value, ctx)
    expected = _EXPECTED.get(kind.split("_")[0])
    if expected and kind != "string_too_long":
        hint = " (quote it)" if kind == "string_type" and isinstance(value, int | float) else ""
        return loc, f"expected {expected}, got {_describe(value)}{hint}"
    return loc, error["msg"]


def _range_message(loc: Loc, value: Any, ctx: dict[str, Any]) -> str:
    metadata = _walk(loc)[1]
    bounds = {k: getattr(m, k) for m in metadata for k in ("ge", "le") if hasattr(m, k)}
    duration = any(getattr(m, "func", None) is parse_duration for m in metadata)
    show = format_duration if duration else (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    if "ge" in bounds and "le" in bounds:
        rule = f"must be between {show(bounds['ge'])} and {show(bounds['le'])}"
    else:
        (op, bound), *_ = ctx.items()
        rule = (
            f"must be {dict(ge='at least', le='at most', gt='more than', lt='less than')[op]} {show(bound)}"
        )
    return f"{rule}, got {value if isinstance(value, str) else show(value)}"


def _unwrap(tp: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip Annotated (collecting its metadata) and Optional from an annotation."""
    while True:
        args = get_args(tp)
        if get_origin(tp) is Annotated:
            tp = args[0]
            for extra in args[1:]:
                metadata += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        elif get_origin(tp) in (Union, UnionType) and len(args) == 2 and NoneType in args:
            tp = args[0] if args[1] is NoneType else args[1]
        else:
            return tp, metadata


def _walk(loc: Loc) -> tuple[Any, list[Any]]:
    """The annotation pydantic validated at ``loc`` (following the models), and its metadata."""
    tp, metadata = _unwrap(Config, [])
    for part in loc:
        if get_origin(tp) in (Union, UnionType):  # the event source union: part is its tag
            tp, metadata = EVENT_SOURCE_CLASSES.get(str(part)), []
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            info = tp.model_fields[str(part)]
            tp, metadata = _unwrap(info.annotation, list(info.metadata))
        elif get_origin(tp) in (list, dict):
            tp, metadata = _unwrap(get_args(tp)[-1], [])
        else:
            return None, []
    return tp, metadata


def _model_fields(loc: Loc) -> list[str]:
    tp = _walk(loc)[0]
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def load_config(path: str | Path) -> Config:
    """Read, interpolate and validate the YAML file at ``path``; raise ConfigError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{file}:{line}: file is not valid UTF-8"]) from None
    except FileNotFoundError:
        raise ConfigError([f"{file}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read file: {exc.strerror or exc}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        detail = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.context_mark:
            detail += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ConfigError([f"{file}:{line}: invalid YAML: {detail}"]) from None
    except yaml.YAMLError as exc:
        line = text[: getattr(exc, "position", 0)].count("\n") + 1
        raise ConfigError([f"{file}:{line}: invalid YAML: {' '.join(str(exc).split())}"]) from None
    if root is None:
        raise ConfigError([f"{file}:1: file is empty (expected a mapping with a 'functions' key)"])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{file}:{root.start_mark.line + 1}: top level must be a mapping of settings"])
    doc = _Document(file)
    try:
        data = doc.build(root)
    except yaml.MarkedYAMLError as exc:  # e.g. an unknown !tag or a bad !!int
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError([f"{file}:{mark.line + 1 if mark else 1}: invalid YAML: {exc.problem}"]) from None
    if "source_path" in data:
        doc.problem(
            doc.keys[("source_path",)], ("source_path",), "unknown key (set from the file's location)"
        )
    source = Path(os.path.abspath(path))
    data["source_path"] = source
    try:
        config = Config.model_validate(data, context={"base_dir": source.parent, "check_files": True})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            doc.add_error(error)
    if doc.problems:
        ordered = sorted(dict.fromkeys(doc.problems), key=lambda p: p[0])
        raise ConfigError([message for _, message in ordered])
    return config
