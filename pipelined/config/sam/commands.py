"""The command line's SAM parts: `--sam TEMPLATE`, `--parameter-overrides`, and `pipelined sam convert`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pipelined.config.sam.intrinsics import parse_overrides
from pipelined.config.sam.load import load_sam
from pipelined.config.sam.render import render_yaml
from pipelined.config.sam.resources import Declared
from pipelined.config.settings import Config
from pipelined.errors import UsageError


def add_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """`--sam TEMPLATE` and `--parameter-overrides` on a command that reads a configuration."""
    parser.add_argument(
        "--sam", metavar="TEMPLATE", default=default, help="an AWS SAM template instead of -c"
    )
    parser.add_argument(
        "--parameter-overrides",
        action="append",
        default=[] if default is None else default,
        metavar="'K=V ...'",
        help="values for the template's Parameters (as sam deploy takes them)",
    )


def add_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """`pipelined validate FILE | --sam TEMPLATE` and `pipelined sam convert TEMPLATE`."""
    validate = commands.add_parser("validate", help="check a configuration file (or a SAM template)")
    validate.add_argument("file", nargs="?")
    add_options(validate)
    sam = commands.add_parser("sam", help="AWS SAM templates")
    sam_commands = sam.add_subparsers(dest="sam_command", required=True, parser_class=parser_class)
    convert = sam_commands.add_parser("convert", help="print a SAM template as a pipelined configuration")
    convert.add_argument("template")
    convert.add_argument("--parameter-overrides", action="append", default=[], metavar="'K=V ...'")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    try:
        return parse_overrides(getattr(args, "parameter_overrides", None) or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@dataclass(frozen=True)
class Loaded:
    """The configuration a command runs: from a YAML file, or from a SAM template (with its extras)."""

    config: Config
    # A SAM template: how a reload re-reads it, and the resources it declares (for `pipelined dev`).
    loader: Callable[[], Config] | None = None
    declared: Declared | None = None


def load(args: argparse.Namespace, err: TextIO, read_yaml: Callable[[], Config]) -> Loaded:
    """`--sam TEMPLATE` (its unsupported parts listed on ``err``), or else the YAML ``read_yaml`` reads."""
    template = getattr(args, "sam", None)
    if template is None:
        return Loaded(read_yaml())
    if getattr(args, "config", None) or getattr(args, "file", None):
        raise UsageError("give either a configuration file or --sam TEMPLATE, not both")
    overrides = _overrides(args)
    loaded = load_sam(template, overrides)
    for line in loaded.unsupported():
        err.write(line + "\n")
    return Loaded(loaded.config, lambda: load_sam(template, overrides).config, loaded.declared)


def convert(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`pipelined sam convert`: the same checks as `validate --sam`, then the file that validates."""
    loaded = load_sam(args.template, _overrides(args))
    for line in loaded.unsupported():
        err.write(line + "\n")
    out.write(render_yaml(loaded.conversion))
    return 0
