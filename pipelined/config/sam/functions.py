"""An `AWS::Serverless::Function` (with `Globals.Function`) as a pipelined function."""

from __future__ import annotations

from typing import Any

from pipelined.config.sam.conversion import Conversion
from pipelined.config.sam.events import map_events
from pipelined.config.sam.resources import LAYER
from pipelined.config.types import Loc

_REASONS = {
    "Role": "IAM: pipelined does not enforce permissions",
    "Policies": "IAM: pipelined does not enforce permissions",
    "PermissionsBoundary": "IAM: pipelined does not enforce permissions",
    "RolePath": "IAM: pipelined does not enforce permissions",
    "Architectures": "the function runs on this machine's architecture",
    "AutoPublishAlias": "pipelined runs one version of each function",
    "AutoPublishCodeSha256": "pipelined runs one version of each function",
    "DeploymentPreference": "pipelined runs one version of each function",
    "VersionDescription": "pipelined runs one version of each function",
    "Description": "metadata only",
    "Tags": "metadata only",
    "PropagateTags": "metadata only",
    "VpcConfig": "the function uses this machine's network",
    "KmsKeyArn": "environment variables are not encrypted",
    "EphemeralStorage": "the function uses this machine's /tmp",
    "LoggingConfig": "logs follow pipelined's `logging` settings",
    "CodeSigningConfigArn": "code is not signed",
    "FileSystemConfigs": "use a local directory",
    "SnapStart": "no snapshots: a cold start imports the handler",
    "RuntimeManagementConfig": "the runtime is this machine's",
}
_GLOBAL_SECTIONS = {"Function"}


_TRACING = {"Active": "active", "PassThrough": "pass_through"}


def _tracing(
    conv: Conversion,
    properties: dict[str, Any],
    paths: dict[str, Loc],
    fn: dict[str, Any],
    loc: Loc,
    used: set[str],
) -> None:
    """`Tracing: Active | PassThrough` as `tracing:`; Active exports spans only with an OTLP endpoint set."""
    if "Tracing" not in properties:
        return
    used.add("Tracing")
    value = conv.resolve(properties["Tracing"], paths["Tracing"])
    if value not in _TRACING:
        conv.problem(paths["Tracing"], f"expected Active or PassThrough, got {value!r}")
        return
    settings = conv.data.get("tracing")
    if value == "Active" and not (isinstance(settings, dict) and settings.get("otlp_endpoint")):
        # X-Ray has nowhere to go here: the handler still gets its trace header, as with PassThrough.
        conv.skip(paths["Tracing"], "set Metadata.pipelined.tracing.otlp_endpoint to export spans over OTLP")
        return
    conv.put(fn, loc, "tracing", _TRACING[value], paths["Tracing"], note="Tracing")


def function_properties(conv: Conversion, logical_id: str) -> tuple[dict[str, Any], dict[str, Loc]]:
    """The function's properties with `Globals.Function` merged in, and the template path of each."""
    own_path: Loc = ("Resources", logical_id, "Properties")
    globals_ = conv.template.data.get("Globals") or {}
    shared = globals_.get("Function") if isinstance(globals_, dict) else None
    merged: dict[str, Any] = {}
    paths: dict[str, Loc] = {}
    for key, value in (shared or {}).items():
        merged[key], paths[key] = value, ("Globals", "Function", key)
    for key, value in conv.resources.properties(logical_id).items():
        previous = merged.get(key)
        # SAM's rules: maps are merged (the function's keys win), lists are appended, the rest replaced.
        if isinstance(previous, dict) and isinstance(value, dict) and not _intrinsic(value):
            merged[key] = _merge(previous, value)
        elif isinstance(previous, list) and isinstance(value, list):
            merged[key] = previous + value
        else:
            merged[key] = value
        paths[key] = (*own_path, key)
    return merged, paths


def _intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in own.items():
        inner = result.get(key)
        both = isinstance(inner, dict) and isinstance(value, dict)
        result[key] = _merge(inner, value) if both and isinstance(inner, dict) else value
    return result


def check_globals(conv: Conversion) -> None:
    """List the Globals sections pipelined does not apply."""
    globals_ = conv.template.data.get("Globals") or {}
    for section in globals_ if isinstance(globals_, dict) else {}:
        if section not in _GLOBAL_SECTIONS:
            conv.skip(("Globals", section), "only Globals.Function is applied")


def map_function(conv: Conversion, logical_id: str) -> tuple[str, dict[str, Any]]:
    """The pipelined name and function mapping of one SAM function."""
    name = conv.resources.name(logical_id)
    loc: Loc = ("functions", name)
    properties, paths = function_properties(conv, logical_id)
    fn: dict[str, Any] = {}
    conv.origins[loc] = ("Resources", logical_id)
    used = {"FunctionName", "Events"}
    if properties.get("PackageType") == "Image":
        conv.problem(paths["PackageType"], "container image functions are not supported (use a Zip function)")
    used.add("PackageType")

    used.add("CodeUri")
    code = conv.resolve(properties.get("CodeUri", "."), paths.get("CodeUri", ("Resources", logical_id)))
    if isinstance(code, str) and not code.startswith("s3://"):
        conv.put(fn, loc, "code", code, paths.get("CodeUri", ("Resources", logical_id)), note="CodeUri")
    else:
        conv.problem(paths.get("CodeUri", ()), f"CodeUri must be a local directory, got {code!r}")
    if "InlineCode" in properties:
        used.add("InlineCode")
        conv.problem(
            paths["InlineCode"], "InlineCode is not supported: put the code in a directory (CodeUri)"
        )

    rules: dict[str, Any] = {
        "Runtime": "runtime",
        "Handler": "handler",
        "Timeout": "timeout",
        "MemorySize": "memory_mb",
        "ReservedConcurrentExecutions": "reserved_concurrency",
    }
    for prop, key in rules.items():
        if prop in properties:
            used.add(prop)
            value = conv.resolve(properties[prop], paths[prop])
            if value is not None:
                note = prop if paths[prop][0] == "Resources" else f"Globals.Function.{prop}"
                conv.put(fn, loc, key, value, paths[prop], note=note)
    _environment(conv, properties, paths, fn, loc, used)
    _layers(conv, properties, paths, fn, loc, used)
    _provisioned(conv, properties, paths, fn, loc, used)
    _async(conv, properties, paths, fn, loc, used)
    _tracing(conv, properties, paths, fn, loc, used)
    events = map_events(conv, logical_id, name, properties.get("Events"), paths.get("Events", ()))
    if "FunctionUrlConfig" in properties:
        used.add("FunctionUrlConfig")
        events.append(
            _function_url(conv, properties["FunctionUrlConfig"], paths["FunctionUrlConfig"], loc, len(events))
        )
    if events:
        fn["events"] = events
    for prop in properties:
        if prop not in used:
            conv.skip(paths[prop], _REASONS.get(prop, "pipelined has no equivalent"))
    return name, fn


def _environment(
    conv: Conversion,
    properties: dict[str, Any],
    paths: dict[str, Loc],
    fn: dict[str, Any],
    loc: Loc,
    used: set[str],
) -> None:
    if "Environment" not in properties:
        return
    used.add("Environment")
    environment = properties["Environment"]
    variables = environment.get("Variables") if isinstance(environment, dict) else None
    path = (*paths["Environment"], "Variables")
    if not isinstance(variables, dict):
        conv.problem(paths["Environment"], "expected a mapping with Variables")
        return
    resolved: dict[str, Any] = {}
    for key, value in variables.items():
        resolved[key] = conv.resolve(value, (*path, key))
        conv.origins[(*loc, "environment", key)] = (*path, key)
    conv.put(fn, loc, "environment", resolved, path, note="Environment.Variables")


def _layers(
    conv: Conversion,
    properties: dict[str, Any],
    paths: dict[str, Loc],
    fn: dict[str, Any],
    loc: Loc,
    used: set[str],
) -> None:
    if "Layers" not in properties:
        return
    used.add("Layers")
    layers = properties["Layers"]
    if not isinstance(layers, list):
        conv.problem(paths["Layers"], "expected a list of layers")
        return
    found: list[str] = []
    for index, layer in enumerate(layers):
        path = (*paths["Layers"], index)
        target = layer.get("Ref") if isinstance(layer, dict) and len(layer) == 1 else None
        if isinstance(target, str) and conv.resources.has(target) and conv.resources.type(target) == LAYER:
            content_path: Loc = ("Resources", target, "Properties", "ContentUri")
            content = conv.resolve(conv.resources.properties(target).get("ContentUri"), content_path)
            if not isinstance(content, str) or content.startswith("s3://"):
                conv.problem(content_path, f"ContentUri must be a local directory, got {content!r}")
                continue
            # Lambda puts a Python layer's python/ directory on sys.path (/opt/python).
            inner = conv.template.path.parent / content / "python"
            directory = f"{content.rstrip('/')}/python" if inner.is_dir() else content
            conv.origins[(*loc, "layers", len(found))] = path
            found.append(directory)
        else:
            conv.skip(
                path,
                "a layer ARN cannot be fetched: declare the layer as an AWS::Serverless::LayerVersion "
                "with a local ContentUri",
            )
    if found:
        conv.put(fn, loc, "layers", found, paths["Layers"], note="Layers (their ContentUri)")


def _provisioned(
    conv: Conversion,
    properties: dict[str, Any],
    paths: dict[str, Loc],
    fn: dict[str, Any],
    loc: Loc,
    used: set[str],
) -> None:
    if "ProvisionedConcurrencyConfig" not in properties:
        return
    used.add("ProvisionedConcurrencyConfig")
    path = paths["ProvisionedConcurrencyConfig"]
    config = conv.resolve(properties["ProvisionedConcurrencyConfig"], path)
    count = config.get("ProvisionedConcurrentExecutions") if isinstance(config, dict) else None
    if count is None:
        conv.problem(path, "expected ProvisionedConcurrentExecutions")
        return
    conv.put(
        fn,
        loc,
        "provisioned_concurrency",
        count,
        (*path, "ProvisionedConcurrentExecutions"),
        note="ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
    )
    conv.put(fn, loc, "isolation", "process", path, note="warm workers need process isolation")


def _destination(conv: Conversion, value: Any, path: Loc) -> str | None:
    """An EventInvokeConfig destination ({Type, Destination}) as pipelined's destination string."""
    if not isinstance(value, dict):
        conv.problem(path, "expected a mapping with Type and Destination")
        return None
    kind, target = value.get("Type"), value.get("Destination")
    if kind not in ("SQS", "SNS", "Lambda"):
        conv.skip(path, f"pipelined has no {kind} destinations (SQS, SNS or Lambda)")
        return None
    if target is None:
        conv.skip(path, "SAM would create the destination: name one with Destination")
        return None
    if kind == "Lambda" and not str(target).startswith("arn:"):
        return f"function:{target}"  # a !Ref to a function gives its name
    return str(target)


def _async(
    conv: Conversion,
    properties: dict[str, Any],
    paths: dict[str, Loc],
    fn: dict[str, Any],
    loc: Loc,
    used: set[str],
) -> None:
    settings: dict[str, Any] = {}
    where: Loc = (*loc, "async")
    destinations: dict[str, Any] = {}
    if "EventInvokeConfig" in properties:
        used.add("EventInvokeConfig")
        path = paths["EventInvokeConfig"]
        config = conv.resolve(properties["EventInvokeConfig"], path)
        config = config if isinstance(config, dict) else {}
        rules = {
            "MaximumRetryAttempts": "maximum_retry_attempts",
            "MaximumEventAgeInSeconds": "maximum_event_age",
        }
        for prop, key in rules.items():
            if prop in config:
                conv.put(settings, where, key, config[prop], (*path, prop), note=f"EventInvokeConfig.{prop}")
        for prop, key in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
            value = (config.get("DestinationConfig") or {}).get(prop)
            if value is not None:
                at = (*path, "DestinationConfig", prop)
                target = _destination(conv, value, at)
                if target is not None:
                    conv.put(
                        destinations,
                        (*where, "destinations"),
                        key,
                        target,
                        at,
                        note=f"DestinationConfig.{prop}",
                    )
        for prop in config:
            if prop not in (*rules, "DestinationConfig"):
                conv.skip((*path, prop), "pipelined has no equivalent")
    if "DeadLetterQueue" in properties:
        used.add("DeadLetterQueue")
        path = paths["DeadLetterQueue"]
        dlq = conv.resolve(properties["DeadLetterQueue"], path)
        if "on_failure" in destinations:
            conv.skip(path, "EventInvokeConfig's OnFailure destination is used instead")
        elif isinstance(dlq, dict) and dlq.get("TargetArn"):
            conv.put(
                destinations,
                (*where, "destinations"),
                "on_failure",
                dlq["TargetArn"],
                (*path, "TargetArn"),
                note="DeadLetterQueue (failed asynchronous events)",
            )
        else:
            conv.problem(path, "expected Type and TargetArn")
    if destinations:
        conv.put(settings, where, "destinations", destinations, paths.get("EventInvokeConfig", ()))
    if settings:
        conv.put(fn, loc, "async", settings, paths.get("EventInvokeConfig") or paths["DeadLetterQueue"])


def _function_url(conv: Conversion, config: Any, path: Loc, loc: Loc, index: int) -> dict[str, Any]:
    config = conv.resolve(config, path)
    event: dict[str, Any] = {}
    where = (*loc, "events", index)
    conv.put(event, where, "type", "function_url", path, note="FunctionUrlConfig")
    for prop, value in (config if isinstance(config, dict) else {}).items():
        if prop == "AuthType" and value == "NONE":
            continue
        if prop == "InvokeMode" and value == "BUFFERED":
            continue
        reason = (
            "the URL is not signed: requests are not checked"
            if prop == "AuthType"
            else "pipelined has no equivalent"
        )
        conv.skip((*path, prop), reason)
    conv.origins[where] = path
    return event
