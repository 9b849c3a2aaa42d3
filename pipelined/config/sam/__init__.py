"""AWS SAM templates as pipelined configurations: `run --sam`, `validate --sam`, `sam convert`.

Modules, each importing only those before it: ``reader`` (the template's YAML/JSON with its tags, and
lines), ``intrinsics`` (Ref, GetAtt, Sub, If, ..., parameters), ``resources`` (queues, tables, buckets
... the template declares), ``conversion`` (the data being built and where each value came from),
``eventbridge``, ``events``, ``functions``, ``load`` (to a validated Config), ``render`` (as YAML).
"""

from pipelined.config.sam.intrinsics import parse_overrides
from pipelined.config.sam.load import SamConfig, convert_template, load_sam
from pipelined.config.sam.render import render_yaml
from pipelined.config.sam.resources import Declared

__all__ = ["Declared", "SamConfig", "convert_template", "load_sam", "parse_overrides", "render_yaml"]
