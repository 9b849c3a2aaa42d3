"""Loading the file: read, parse, interpolate, validate; every problem as ``FILE:LINE: field: message``."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from pipelined.config.document import Document
from pipelined.config.messages import explain
from pipelined.config.settings import Config
from pipelined.config.types import read_config_text
from pipelined.errors import ConfigError

# A SAM template's `Transform`: such a file is read by `--sam` (config/sam/), not as a pipelined file.
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def load_config(path: str | Path) -> Config:
    """Read, interpolate and validate the YAML file at ``path``; raise ConfigError listing every problem."""
    file = str(path)
    text = read_config_text(path)
    if (at := text.find(SAM_TRANSFORM)) >= 0 and "functions" not in text:
        line = text[:at].count("\n") + 1
        raise ConfigError([f"{file}:{line}: an AWS SAM template, not a pipelined file: use --sam {file}"])
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
    doc = Document(file)
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
            loc, message = explain(error)
            # An unknown key is reported at the key itself, not at its value.
            doc.report(loc, message, unknown_key=error["type"] == "extra_forbidden")
    if doc.problems:
        ordered = sorted(dict.fromkeys(doc.problems), key=lambda p: p[0])
        raise ConfigError([message for _, message in ordered])
    return config
