"""The block `pipelined dev` prints at start: every function with its triggers, and where to reach what."""

from __future__ import annotations

from dataclasses import dataclass

from pipelined.config import Config, EventSourceConfig
from pipelined.config.gateway import routes_of
from pipelined.config.types import connect_host, listen_host
from pipelined.core.routes import Route


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports the daemon's listeners are bound to (the config may say 0: any free one)."""

    ops: int
    gateway: int
    # None: the Lambda API is off (`api.listen: null`).
    api: int | None


def _host(listen: str) -> str:
    return connect_host(listen_host(listen))


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def describe_source(source: EventSourceConfig) -> str:
    """One event source in a few words, e.g. `sqs orders (queue orders)`."""
    what = next(
        (
            f"{field} {value}"
            for field in ("queue", "bucket", "table", "stream", "stream_arn", "topic")
            if (value := getattr(source, field, None))
        ),
        getattr(source, "expression", None) or "",
    )
    via = getattr(getattr(source, "via", None), "sqs", None)
    if via:
        what += f" via queue {via}"
    text = f"{source.type} {source.name}"
    if what:
        text += f" ({what})"
    return text if source.enabled else text + " (disabled)"


def _route(route: Route, base: str) -> str:
    method = "ANY " if route.method == "ANY" else f"{route.method} "
    if route.host:
        return f"{method}{base}{route.path} (Host: {route.host})"
    return f"{method}{base}{route.path}"


def summary(config: Config, endpoint: str, ports: Ports, watching: bool) -> str:
    """The text of the block, ending with a newline."""
    gateway = _url(_host(config.gateway.listen), ports.gateway)
    routes: dict[str, list[str]] = {}
    for route in routes_of(config.functions):
        routes.setdefault(route.function, []).append(_route(route, gateway))
    width = max(len(name) for name in config.functions)
    lines = ["", "pipelined dev: the whole stack on this machine, no AWS account needed", "  functions:"]
    for name, function in config.functions.items():
        triggers = [
            *routes.get(name, []),
            *(
                describe_source(s)
                for s in function.events
                if s.type not in ("api", "http_api", "function_url")
            ),
        ]
        lines.append(
            f"    {name:<{width}}  {triggers[0] if triggers else '(no triggers: pipelined invoke it)'}"
        )
        lines += [f"    {'':<{width}}  {t}" for t in triggers[1:]]
    ops = _url(_host(config.http.listen), ports.ops)
    lines.append(f"  AWS endpoint (boto3 endpoint_url=, aws --endpoint-url): {endpoint}")
    if ports.api is not None and config.api.listen is not None:
        api = _url(_host(config.api.listen), ports.api)
        lines.append(
            f"  Lambda API:  {api}  (aws lambda invoke --endpoint-url {api} --function-name NAME out.json)"
        )
    lines.append(f"  metrics:     {ops}/metrics")
    source = config.source_path
    lines += [
        "  from another terminal:",
        f"    pipelined invoke NAME -c {source} --event sqs --body '{{\"x\": 1}}'",
        f"    pipelined events generate s3 --bucket B --key K   (sample events: {', '.join(_types())})",
        f"    pipelined dev send -c {source} QUEUE BODY  |  pipelined dev put -c {source} BUCKET KEY FILE",
    ]
    if watching:
        lines.append("  hot reload: saving a handler or the config file reloads it (Ctrl-C stops)")
    return "\n".join(lines) + "\n\n"


def _types() -> list[str]:
    from pipelined.sources.samples import SAMPLES

    return sorted(SAMPLES)
