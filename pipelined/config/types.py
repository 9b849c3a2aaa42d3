"""Value types and small validators the config models are built from: durations, paths, names, refs."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from pipelined.core.filtering import FilterPatternError, validate_patterns
from pipelined.errors import ConfigError

# A path into the configuration: mapping keys and list indexes, e.g. ("functions", "f", "events", 0).
Loc = tuple[str | int, ...]


class FieldValueError(ValueError):
    """A validation error a model-level check attributes to one of its fields (by relative path)."""

    def __init__(self, field: Loc, message: str) -> None:
        super().__init__(message)
        self.field = field


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors and loaded values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- durations -------------------------------------------------------------------------------

_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_COMPOUND = re.compile(rf"(?:{_PART.pattern})+")


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string like "500ms", "30s", "5m", "1h", "7d", "1h30m"."""
    seconds: float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 30, '500ms' or '5m', got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        if _NUMBER.fullmatch(text):
            seconds = float(Decimal(text))
        elif _COMPOUND.fullmatch(text):
            seconds = float(sum(Decimal(num) * _UNITS[unit] for num, unit in _PART.findall(text)))
        else:
            raise ValueError(
                f"invalid duration {value!r}: expected seconds or a number with a unit "
                "(ms, s, m, h, d), e.g. '500ms', '30s', '5m', '1h30m'"
            )
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: must be a finite number")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds + 0.0  # turns -0.0 into 0.0


def format_duration(seconds: float) -> str:
    """Shortest exact rendering with the largest unit: 21600 -> "6h", 0.5 -> "500ms"."""
    if seconds <= 0:
        return f"{seconds:g}"
    for unit in ("d", "h", "m", "s"):
        count = Decimal(repr(float(seconds))) / _UNITS[unit]
        if count == count.to_integral_value():
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


Duration = Annotated[float, BeforeValidator(parse_duration)]


# --- paths (resolved against the config file's directory when loaded by load_config) ---------


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None:
        return value
    return Path(os.path.normpath(Path(base) / value.expanduser()))


def _exists(kind: Literal["dir", "file"]) -> Any:
    def check(value: Path, info: ValidationInfo) -> Path:
        if (info.context or {}).get("check_files"):
            if not value.exists():
                raise ValueError(f"{value} does not exist")
            if kind == "dir" and not value.is_dir():
                raise ValueError(f"{value} is not a directory")
            if kind == "file" and not value.is_file():
                raise ValueError(f"{value} is not a file")
        return value

    return check


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
DirPath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_exists("dir"))]
FilePath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_exists("file"))]


# --- small validators ------------------------------------------------------------------------


def matches(pattern: str, what: str) -> Callable[[str], str]:
    """An after-validator: the whole string must match ``pattern``; else 'must be WHAT, got ...'."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return check


def _mqtt_filter(topic: str) -> str:
    if not topic:
        raise ValueError("must not be empty")
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"invalid MQTT topic filter {topic!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ValueError(f"invalid MQTT topic filter {topic!r}: '+' must be a whole level")
    if "\0" in topic:
        raise ValueError("must not contain NUL characters")
    return topic


def _patterns(patterns: list[Any]) -> list[Any]:
    try:
        validate_patterns(patterns)
    except FilterPatternError as exc:
        raise ValueError(f"invalid filter pattern: {exc}") from None
    return patterns


def split_listen(value: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:port') as (host, port); ValueError when malformed."""
    host, _, port = value.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not bare or (":" in host and bare == host):
        raise ValueError(f"expected 'host:port' (IPv6 as '[::1]:port'), got {value!r}")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"port must be a number between 0 and 65535, got {port!r}")
    return bare, int(port)


def listen_address(value: str) -> str:
    """An after-validator for 'host:port' (IPv6 as '[::1]:port')."""
    split_listen(value)
    return value


def connect_host(host: str) -> str:
    """Where a client on this machine reaches a listener bound to `host`: loopback for the wildcards."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def local_url(host: str, port: int) -> str:
    """`http://HOST:PORT` of a listener bound to `host` (IPv6 in brackets), as a local client calls it."""
    target = connect_host(host)
    return f"http://[{target}]:{port}" if ":" in target else f"http://{target}:{port}"


def listen_host(value: str) -> str:
    """The host of a 'host:port' address, without an IPv6 address's brackets."""
    host = value.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") else host


# A Python identifier in ASCII: environment variable names, ${VAR} references, handler parts.
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
# Regular expressions for AWS names and ARNs, shared by the event sources and the destinations.
ARN_PARTITION = r"arn:aws(?:-[a-z]+)*"
_QUEUE_NAME = r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?"
QUEUE_URL = rf"https?://[^/\s]+(?:/[^/\s]+)*/{_QUEUE_NAME}"
QUEUE_ARN = rf"{ARN_PARTITION}:sqs:[a-z0-9-]+:\d{{12}}:{_QUEUE_NAME}"
TOPIC_ARN = rf"{ARN_PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}(?:\.fifo)?"

QueueRef = Annotated[
    str, AfterValidator(matches(f"{QUEUE_URL}|{QUEUE_ARN}|{_QUEUE_NAME}", "an SQS queue URL, ARN or name"))
]
Filters = Annotated[list[Any], AfterValidator(_patterns)]
EventName = Annotated[str, AfterValidator(matches(r"[A-Za-z0-9_.-]+", "letters, digits, '_', '.' or '-'"))]
MqttFilter = Annotated[str, AfterValidator(_mqtt_filter)]
BatchWindow = Annotated[Duration, Field(ge=0, le=300)]


def read_config_text(path: str | Path) -> str:
    """A config file's or template's text (UTF-8, a BOM allowed); ConfigError naming the file if not."""
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
    return text
