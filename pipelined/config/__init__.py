"""The YAML configuration file: models, loading, ``${VAR}`` interpolation and readable errors.

:func:`load_config` raises :class:`~pipelined.errors.ConfigError` whose problems are each one line
``FILE:LINE: dotted.field.path: message``, all of them, not just the first.

Modules, each importing only those before it: ``types`` (durations, paths, names), ``api`` (the Lambda
API's settings, permissions, async invocation), ``events`` (event sources, destinations), ``functions``,
``settings`` (the top-level sections and :class:`Config`), ``document`` (YAML lines and
interpolation), ``messages`` (pydantic errors made readable), ``load``.
Import from this package, not from the modules.
"""

from pipelined.config.api import (
    ApiConfig,
    ApiCredential,
    AsyncDestination,
    AsyncInvokeConfig,
    Permission,
)
from pipelined.config.eventbridge import (
    ArchiveConfig,
    EventBridgeSource,
    EventBusConfig,
    InputTransformerConfig,
    RulePolicyConfig,
)
from pipelined.config.events import (
    DestinationConfig,
    DynamoDBStreamSource,
    EventSourceConfig,
    KinesisSource,
    MqttSource,
    RetryBackoff,
    S3Source,
    S3Via,
    ScheduleSource,
    SqsSource,
)
from pipelined.config.functions import FunctionConfig
from pipelined.config.gateway import CorsConfig, GatewayConfig
from pipelined.config.http_events import ApiSource, FunctionUrlSource, HttpApiSource
from pipelined.config.load import load_config
from pipelined.config.settings import AwsConfig, Config, HttpConfig, LoggingConfig, MqttConfig
from pipelined.config.types import Duration, parse_duration

__all__ = [
    "ApiConfig",
    "ApiCredential",
    "ApiSource",
    "ArchiveConfig",
    "AsyncDestination",
    "AsyncInvokeConfig",
    "AwsConfig",
    "Config",
    "CorsConfig",
    "DestinationConfig",
    "Duration",
    "DynamoDBStreamSource",
    "EventBridgeSource",
    "EventBusConfig",
    "EventSourceConfig",
    "FunctionConfig",
    "FunctionUrlSource",
    "GatewayConfig",
    "HttpApiSource",
    "HttpConfig",
    "InputTransformerConfig",
    "KinesisSource",
    "LoggingConfig",
    "MqttConfig",
    "MqttSource",
    "Permission",
    "RetryBackoff",
    "RulePolicyConfig",
    "S3Source",
    "S3Via",
    "ScheduleSource",
    "SqsSource",
    "load_config",
    "parse_duration",
]
