"""Tests for the top-level sections (http, aws, mqtt, logging) and Config's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelined.config import AwsConfig, HttpConfig, LoggingConfig, MqttConfig, load_config
from tests.config.support import write


def test_defaults_of_a_minimal_file(project: Path) -> None:
    config = load_config(write(project, "functions:\n  f: {handler: app.handler, code: fn}\n"))
    assert config.state_dir == project / ".pipelined"
    assert config.http == HttpConfig() and config.http.port == 9108
    assert config.mqtt == MqttConfig() and config.aws == AwsConfig() and config.logging == LoggingConfig()
    assert config.functions["f"].events == [] and config.functions["f"].layers == []
    assert config.summary() == "1 function, 0 event sources"


def test_small_models() -> None:
    assert (HttpConfig(listen="0.0.0.0:80").host, HttpConfig(listen="0.0.0.0:80").port) == ("0.0.0.0", 80)
    for listen in ("nohost", ":80", "h:99999", "h:x", "::1:80"):
        with pytest.raises(ValidationError):
            HttpConfig(listen=listen)
    for url in ("mqtt://h", "mqtts://h:8883", "ws://h/mqtt", "wss://h"):
        assert MqttConfig(url=url).url == url
    for url in ("http://h", "mqtt://", "mqtt://h:notaport"):
        with pytest.raises(ValidationError):
            MqttConfig(url=url)
    assert LoggingConfig.model_validate({"level": "warning"}).level == "WARNING"
    assert AwsConfig.model_validate({"endpoint_url": ""}).endpoint_url is None
