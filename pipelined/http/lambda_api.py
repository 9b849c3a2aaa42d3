"""The Lambda API (boto3's and the AWS CLI's `lambda` client): Invoke and the read-only function operations.

Paths, headers, status codes and error shapes are those of botocore's `lambda` service model, so an
unchanged client pointed at pipelined (`endpoint_url`) raises the exception classes AWS's would.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import weakref
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from pipelined.core.identity import DEFAULT_ACCOUNT_ID, VERSION, function_arn
from pipelined.core.tracing import http_trace_id
from pipelined.dispatch.async_queue import AsyncQueue, QueueFullError
from pipelined.functions.function import Function
from pipelined.http import lambda_shapes
from pipelined.http.aws_errors import ApiError, invalid_parameter, not_found
from pipelined.http.unsupported import unsupported_operation
from pipelined.invoke.service import Caller, InvocationKind, InvokeService, ThrottledError
from pipelined.observe.metrics import Metrics
from pipelined.observe.tail import LogTail

# Lambda's payload quotas: 6 MB for synchronous invocations (request and response), 1 MB for Event.
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
CLIENT_CONTEXT_LIMIT = 3583
LIST_PAGE_LIMIT = 50
INVOKE = "lambda:InvokeFunction"
GET = "lambda:GetFunction"
SOURCE = "api"


def _json_default(value: Any) -> Any:
    # As Lambda's Python runtime: Decimal (from boto3's DynamoDB deserialiser) becomes a number.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class LambdaApi:
    """The Lambda API's operations over the daemon's functions, invoke service and async queue."""

    def __init__(
        self,
        service: InvokeService,
        queue: AsyncQueue | None,
        tail: LogTail,
        metrics: Metrics,
        source_path: Callable[[], Path],
    ) -> None:
        self.service = service
        self.queue = queue
        self.tail = tail
        self.metrics = metrics
        self._source_path = source_path
        self._callers: dict[str, Caller] = {}
        # When the running daemon built each function: Lambda's LastModified.
        self._loaded: weakref.WeakKeyDictionary[Function, float] = weakref.WeakKeyDictionary()

    def routes(self) -> list[web.RouteDef]:
        """The operations, by Lambda's REST paths; anything else in the model is refused by name."""
        return [
            web.post("/2015-03-31/functions/{name}/invocations", self.invoke, name="Invoke"),
            web.get("/2015-03-31/functions/{name}/configuration", self.get_configuration, name="GetConfig"),
            web.get("/2015-03-31/functions/{name}", self.get_function, name="GetFunction"),
            web.get("/2015-03-31/functions", self.list_functions, name="ListFunctions"),
            web.get("/2015-03-31/functions/", self.list_functions, name="ListFunctionsSlash"),
            web.get("/2019-09-30/functions/{name}/concurrency", self.get_concurrency, name="Concurrency"),
            web.get(
                "/2019-09-30/functions/{name}/provisioned-concurrency",
                self.get_provisioned,
                name="ProvisionedConcurrency",
            ),
            web.get(
                "/2019-09-25/functions/{name}/event-invoke-config",
                self.get_event_invoke_config,
                name="EventInvokeConfig",
            ),
            web.route("*", "/{tail:.*}", self.unsupported, name="Unsupported"),
        ]

    # --- resolving and authorising -----------------------------------------------------------------------

    def _function(self, request: web.Request) -> Function:
        """The function a path names (name, ARN or partial ARN; `$LATEST` is the only qualifier)."""
        given = request.match_info["name"]
        name, qualifier = given, request.query.get("Qualifier")
        parts = given.split(":")
        if given.startswith("arn:") and len(parts) in (7, 8) and parts[5] == "function":
            name, embedded = parts[6], parts[7] if len(parts) == 8 else None
        elif len(parts) in (3, 4) and parts[1] == "function":
            name, embedded = parts[2], parts[3] if len(parts) == 4 else None
        elif len(parts) in (1, 2):
            name, embedded = parts[0], parts[1] if len(parts) == 2 else None
        else:
            raise invalid_parameter(f"1 validation error detected: Value '{given}' at 'functionName' failed")
        qualifier = qualifier or embedded
        function = self.service.functions.get(name)
        if function is None or qualifier not in (None, VERSION):
            region = function.identity.region if function else self._region()
            account = function.identity.account if function else self.account()
            arn = function_arn(region, account, name) + (f":{qualifier}" if qualifier else "")
            raise not_found(arn)
        self._loaded.setdefault(function, time.time())
        return function

    def _region(self) -> str:
        return next((f.identity.region for f in self.service.functions.values()), "us-east-1")

    def account(self) -> str:
        """The daemon's account id, as its functions carry it."""
        # Every function carries the daemon's one account id (AwsClients.account_id).
        return next((f.identity.account for f in self.service.functions.values()), DEFAULT_ACCOUNT_ID)

    def _authorize(self, request: web.Request, function: Function, action: str, operation: str) -> None:
        permissions = function.config.permissions
        principal: str | None = request.get("principal")
        if permissions is None or any(p.allows(principal, action) for p in permissions):
            return
        self.metrics.api_requests_denied.labels(operation, "permission").inc()
        who = principal or "anonymous (unsigned)"
        raise ApiError(
            403,
            "AccessDeniedException",
            f"User: {who} is not authorized to perform: {action} on resource: {function.arn} "
            f"because no resource-based policy allows the {action} action",
        )

    def _caller(self, function: Function) -> Caller:
        caller = self._callers.get(function.name)
        if caller is None or caller.function is not function:  # new, or rebuilt by a reload
            caller = self.service.caller(function, SOURCE, InvocationKind.REQUEST_RESPONSE)
            self._callers[function.name] = caller
        return caller

    # --- Invoke ----------------------------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        """Invoke: RequestResponse (200), Event (202, queued on disk) or DryRun (204)."""
        function = self._function(request)
        self._authorize(request, function, INVOKE, "Invoke")
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise invalid_parameter(
                f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )
        request_id: str = request["request_id"]
        if kind == "DryRun":
            return web.Response(status=204, headers={"x-amzn-RequestId": request_id})
        body = await request.read()
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            raise too_large(limit)
        event = _parse_payload(body)
        client_context = _client_context(request.headers.get("X-Amz-Client-Context"))
        if kind == "Event":
            trace = http_trace_id(request.headers) or None
            return await self._enqueue(function, body, event, client_context, request_id, trace)
        tail = request.headers.get("X-Amz-Log-Type") == "Tail"
        if tail:
            self.tail.watch(request_id)
        try:
            # A caller's X-Ray header (or W3C traceparent) continues its trace in the handler.
            trace = http_trace_id(request.headers)
            result = await self._caller(function).invoke(event, request_id, client_context, trace)
        except ThrottledError:
            raise ApiError(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
                {"Retry-After": "1"},
            ) from None
        finally:
            log = self.tail.collect(request_id) if tail else None
        headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": VERSION}
        if log is not None:
            headers["X-Amz-Log-Result"] = base64.b64encode(log.encode()).decode()
        error = result.error.payload() if result.error is not None else None
        payload = b""
        if error is None:
            try:
                payload = json.dumps(result.value, default=_json_default).encode()
            except (TypeError, ValueError) as exc:
                error = {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                }
            else:
                if len(payload) > SYNC_PAYLOAD_LIMIT:
                    error = {
                        "errorMessage": "Response payload size exceeded maximum allowed payload size "
                        f"({SYNC_PAYLOAD_LIMIT} bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    }
        if error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            # Lambda's Python runtime puts the request id between the type and the stack trace.
            shaped = {"errorMessage": error.get("errorMessage"), "errorType": error.get("errorType")}
            shaped["requestId"] = request_id
            shaped["stackTrace"] = error.get("stackTrace", [])
            payload = json.dumps(shaped).encode()
        return web.Response(status=200, body=payload, content_type="application/json", headers=headers)

    async def _enqueue(
        self,
        function: Function,
        body: bytes,
        event: Any,
        client_context: Any,
        request_id: str,
        trace: str | None,
    ) -> web.Response:
        if self.queue is None:
            raise ApiError(500, "ServiceException", "the asynchronous invocation queue is not running")
        try:
            await self.queue.submit(
                function.name,
                _payload_text(body, event),
                request_id,
                json.dumps(client_context) if client_context is not None else None,
                trace,
            )
        except QueueFullError as exc:
            raise ApiError(
                429, "TooManyRequestsException", str(exc), {"Reason": "ConcurrentInvocationLimitExceeded"}
            ) from None
        return web.Response(status=202, headers={"x-amzn-RequestId": request_id})

    # --- read-only operations --------------------------------------------------------------------------

    async def get_function(self, request: web.Request) -> web.Response:
        """GetFunction."""
        function = self._function(request)
        self._authorize(request, function, GET, "GetFunction")
        return _json(lambda_shapes.get_function(function, self._loaded[function]))

    async def get_configuration(self, request: web.Request) -> web.Response:
        """GetFunctionConfiguration."""
        function = self._function(request)
        self._authorize(request, function, GET, "GetFunctionConfiguration")
        return _json(lambda_shapes.configuration(function, self._loaded[function]))

    async def list_functions(self, request: web.Request) -> web.Response:
        """ListFunctions, 50 at most per page; `Marker` is the last name of the previous page."""
        raw = request.query.get("MaxItems", str(LIST_PAGE_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= 10000:
            raise invalid_parameter(f"1 validation error detected: Value '{raw}' at 'maxItems' failed")
        size = min(int(raw), LIST_PAGE_LIMIT)
        marker = request.query.get("Marker")
        names = sorted(n for n in self.service.functions if marker is None or n > marker)
        page = names[:size]
        functions = []
        for name in page:
            function = self.service.functions[name]
            functions.append(
                lambda_shapes.configuration(function, self._loaded.setdefault(function, time.time()))
            )
        shape: dict[str, Any] = {"Functions": functions}
        if len(names) > size:
            shape["NextMarker"] = page[-1]
        return _json(shape)

    async def get_concurrency(self, request: web.Request) -> web.Response:
        """GetFunctionConcurrency."""
        function = self._function(request)
        self._authorize(request, function, GET, "GetFunctionConcurrency")
        return _json(lambda_shapes.concurrency(function))

    async def get_provisioned(self, request: web.Request) -> web.Response:
        """GetProvisionedConcurrencyConfig (pipelined's provisioned workers, whatever the qualifier)."""
        function = self._function(request)
        self._authorize(request, function, GET, "GetProvisionedConcurrencyConfig")
        shape = lambda_shapes.provisioned_concurrency(function, self._loaded[function])
        if shape is None:
            raise ApiError(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            )
        return _json(shape)

    async def get_event_invoke_config(self, request: web.Request) -> web.Response:
        """GetFunctionEventInvokeConfig: the function's `async` settings."""
        function = self._function(request)
        self._authorize(request, function, GET, "GetFunctionEventInvokeConfig")
        return _json(lambda_shapes.event_invoke_config(function, self._loaded[function]))

    async def unsupported(self, request: web.Request) -> web.Response:
        """Every other operation of the model: refused, saying the YAML file is the source of truth."""
        raise unsupported_operation(request.method, request.path, self._source_path())


def too_large(limit: int) -> ApiError:
    """RequestEntityTooLargeException, as Lambda words it."""
    return ApiError(
        413,
        "RequestEntityTooLargeException",
        f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
    )


def _json(shape: Any) -> web.Response:
    return web.Response(body=json.dumps(shape).encode(), content_type="application/json")


def _payload_text(body: bytes, event: Any) -> str:
    # Kept as sent when it is UTF-8 (JSON may also come as UTF-16/32), so the handler sees what was sent.
    try:
        return body.decode() if body else "{}"
    except UnicodeDecodeError:
        return json.dumps(event)


def _parse_payload(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from None


def _client_context(header: str | None) -> Any:
    if header is None:
        return None
    error = ApiError(
        400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object."
    )
    if len(header) > CLIENT_CONTEXT_LIMIT * 4 // 3 + 4:
        raise ApiError(
            413,
            "RequestEntityTooLargeException",
            f"Client context must be smaller than {CLIENT_CONTEXT_LIMIT} bytes",
        )
    try:
        value = json.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        raise error from None
    if not isinstance(value, dict):
        raise error
    return value
