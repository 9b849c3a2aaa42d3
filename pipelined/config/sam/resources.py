"""The template's other resources: what `!Ref` and `!GetAtt` give for them, and what dev mode creates.

A resource without an explicit name (`QueueName`, `TableName`, `BucketName`, ...) is named after its
logical id (lower-cased for buckets), not CloudFormation's generated `stack-Id-RANDOM`, so the names
stay the same from one run to the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelined.config.sam.intrinsics import ACCOUNT_ID, Resolver
from pipelined.config.sam.reader import Template
from pipelined.config.types import Loc

QUEUE = "AWS::SQS::Queue"
TOPIC = "AWS::SNS::Topic"
TABLE = "AWS::DynamoDB::Table"
SIMPLE_TABLE = "AWS::Serverless::SimpleTable"
BUCKET = "AWS::S3::Bucket"
STREAM = "AWS::Kinesis::Stream"
FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
EVENT_BUS = "AWS::Events::EventBus"
# Declared for what they give a function (routes, names); their own properties are not used.
PASSIVE = ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::Lambda::LayerVersion")
_NAME_PROPERTY = {
    QUEUE: "QueueName",
    TOPIC: "TopicName",
    TABLE: "TableName",
    SIMPLE_TABLE: "TableName",
    BUCKET: "BucketName",
    STREAM: "Name",
    FUNCTION: "FunctionName",
    LAYER: "LayerName",
    EVENT_BUS: "Name",
}


@dataclass
class Declared:
    """The queues, tables, buckets, streams and topics the template creates (dev mode creates them)."""

    queues: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> queue attributes
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> key schema and attributes
    buckets: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)


class Resources:
    """The template's resources (those whose Condition holds), by logical id."""

    def __init__(self, template: Template, resolver: Resolver) -> None:
        self.template = template
        self.resolver = resolver
        resolver.resources = self
        self.all: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (template.data.get("Resources") or {}).items():
            path: Loc = ("Resources", logical_id)
            if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
                resolver.problem(path, "a resource needs a Type")
                continue
            condition = resource.get("Condition")
            if isinstance(condition, str) and not resolver.condition(condition, (*path, "Condition")):
                continue
            self.all[logical_id] = resource
        self._names: dict[str, str] = {}

    def has(self, logical_id: str) -> bool:
        return logical_id in self.all

    def type(self, logical_id: str) -> str:
        return str(self.all[logical_id]["Type"])

    def of_type(self, *types: str) -> list[str]:
        return [i for i, r in self.all.items() if r["Type"] in types]

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties = self.all[logical_id].get("Properties")
        return properties if isinstance(properties, dict) else {}

    def name(self, logical_id: str) -> str:
        """The physical name of a resource: its name property, or its logical id."""
        if logical_id not in self._names:
            self._names[logical_id] = logical_id  # a name that refers to itself ends here
            kind = self.type(logical_id)
            key = _NAME_PROPERTY.get(kind)
            properties = self.properties(logical_id)
            path: Loc = ("Resources", logical_id, "Properties", key or "")
            value = self.resolver.resolve(properties.get(key), path) if key else None
            if value is None:
                value = logical_id.lower() if kind == BUCKET else logical_id
                if kind == QUEUE and properties.get("FifoQueue") in (True, "true"):
                    value += ".fifo"
            self._names[logical_id] = str(value)
        return self._names[logical_id]

    def ref(self, logical_id: str, path: Loc) -> Any:
        kind, name = self.type(logical_id), self.name(logical_id)
        region = self.resolver.region
        if kind == QUEUE:
            return f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if kind in (TOPIC, LAYER):
            return self._arn(kind, name)
        return name

    def attribute(self, logical_id: str, attribute: str, path: Loc) -> Any:
        kind, name = self.type(logical_id), self.name(logical_id)
        if attribute == "Arn" and kind in _ARN:
            return self._arn(kind, name)
        values = {
            QUEUE: {"QueueName": name, "QueueUrl": self.ref(logical_id, path)},
            TOPIC: {"TopicName": name, "TopicArn": self._arn(kind, name)},
            TABLE: {"StreamArn": f"{self._arn(kind, name)}/stream/latest"},
            BUCKET: {
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.amazonaws.com",
            },
            EVENT_BUS: {"Name": name},
        }.get(kind, {})
        if attribute in values:
            return values[attribute]
        self.resolver.problem(path, f"!GetAtt {logical_id}.{attribute}: not supported for a {kind}")
        return None

    def _arn(self, kind: str, name: str) -> str:
        region = self.resolver.region
        return _ARN[kind].format(region=region, account=ACCOUNT_ID, name=name)

    def declared(self) -> tuple[Declared, list[tuple[Loc, str]]]:
        """What the template creates, for dev mode, and the properties of it dev mode does not apply."""
        found = Declared()
        unused: list[tuple[Loc, str]] = []
        for logical_id in self.all:
            kind = self.type(logical_id)
            path: Loc = ("Resources", logical_id, "Properties")
            properties = self.resolver.resolve(self.properties(logical_id), path)
            name = self.name(logical_id) if kind in _NAME_PROPERTY else logical_id
            if kind == QUEUE:
                found.queues[name] = {
                    k: _attribute(v) for k, v in properties.items() if k in _QUEUE_ATTRIBUTES
                }
            elif kind == TABLE:
                key_schema = properties.get("KeySchema") or [{"AttributeName": "id", "KeyType": "HASH"}]
                found.tables[name] = {
                    "KeySchema": key_schema,
                    "AttributeDefinitions": properties.get("AttributeDefinitions")
                    or [{"AttributeName": "id", "AttributeType": "S"}],
                }
            elif kind == SIMPLE_TABLE:
                key = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
                short = {"String": "S", "Number": "N", "Binary": "B"}.get(str(key.get("Type")), "S")
                found.tables[name] = {
                    "KeySchema": [{"AttributeName": key.get("Name", "id"), "KeyType": "HASH"}],
                    "AttributeDefinitions": [
                        {"AttributeName": key.get("Name", "id"), "AttributeType": short}
                    ],
                }
            elif kind == BUCKET:
                found.buckets.add(name)
            elif kind == STREAM:
                found.streams.add(name)
            elif kind == TOPIC:
                found.topics.add(name)
            if kind in PASSIVE[:2]:
                used: frozenset[str] = frozenset()
                reason = "one gateway serves every route (see Metadata.pipelined.gateway)"
            elif kind in _USED:
                used, applied = _USED[kind]
                reason = f"pipelined dev creates the {kind.rpartition('::')[2]} with {applied} only"
            else:
                continue
            for prop in properties:
                if prop not in used and not (prop == "ShardCount" and properties[prop] in (1, "1")):
                    unused.append(((*path, prop), reason))
        return found, unused


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DelaySeconds",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
)
# Per declared type: the properties dev mode applies, and what it applies (for the others' message).
_USED: dict[str, tuple[frozenset[str], str]] = {
    QUEUE: (frozenset({"QueueName", *_QUEUE_ATTRIBUTES}), "its name and queue attributes"),
    TABLE: (
        frozenset({"TableName", "KeySchema", "AttributeDefinitions", "BillingMode", "StreamSpecification"}),
        "its name, key schema and a NEW_AND_OLD_IMAGES stream",
    ),
    SIMPLE_TABLE: (frozenset({"TableName", "PrimaryKey"}), "its name and primary key"),
    BUCKET: (frozenset({"BucketName"}), "its name"),
    STREAM: (frozenset({"Name"}), "its name and 1 shard"),
    TOPIC: (frozenset({"TopicName"}), "its name"),
    EVENT_BUS: (frozenset({"Name"}), "its name"),
}


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


_ARN = {
    QUEUE: "arn:aws:sqs:{region}:{account}:{name}",
    TOPIC: "arn:aws:sns:{region}:{account}:{name}",
    TABLE: "arn:aws:dynamodb:{region}:{account}:table/{name}",
    SIMPLE_TABLE: "arn:aws:dynamodb:{region}:{account}:table/{name}",
    BUCKET: "arn:aws:s3:::{name}",
    STREAM: "arn:aws:kinesis:{region}:{account}:stream/{name}",
    FUNCTION: "arn:aws:lambda:{region}:{account}:function:{name}",
    LAYER: "arn:aws:lambda:{region}:{account}:layer:{name}:1",
    EVENT_BUS: "arn:aws:events:{region}:{account}:event-bus/{name}",
}

# Types the template may declare without being listed as unsupported.
KNOWN_TYPES = frozenset(_NAME_PROPERTY) | frozenset(PASSIVE)
