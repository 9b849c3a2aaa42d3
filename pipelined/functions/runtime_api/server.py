"""The Lambda Runtime API (2018-06-01) one worker talks to, on its own loopback port.

One port per worker: the port says which execution environment a request comes from, so one runtime
can never answer for another's invocation. Status codes and error objects are those of Lambda's own
Runtime API (its interface emulator): 202 for an accepted response, 400 InvalidRequestID, 403
InvalidStateTransition, 413 RequestEntityTooLarge.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from pipelined.core.lambda_errors import LambdaError
from pipelined.core.tracing import new_trace_id
from pipelined.functions.runtime_api.worker import ApiWorker

PREFIX = "/2018-06-01/runtime/"
# Lambda's payload limit for a synchronous response (6 MB, plus the slack Lambda itself allows).
MAX_RESPONSE = 6 * 1024 * 1024 + 100
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _error(status: int, error_type: str, message: str) -> web.Response:
    return _json(status, {"errorMessage": message, "errorType": error_type})


def _forbidden(worker: ApiWorker, target: str) -> web.Response:
    return _error(
        403,
        "InvalidStateTransition",
        f"State transition from {worker.state} to {target} failed for runtime. "
        "Error: State transition is not allowed",
    )


def runtime_error(body: bytes, header: str | None, default: str) -> LambdaError:
    """The error a runtime posted: its JSON object kept as sent, its type from the body or the header."""
    try:
        posted = json.loads(body) if body else None
    except ValueError:
        posted = None
    if isinstance(posted, dict):
        error_type = posted.get("errorType")
        message = posted.get("errorMessage")
        trace = posted.get("stackTrace", posted.get("trace"))
        return LambdaError(
            error_type if isinstance(error_type, str) and error_type else header or default,
            "" if message is None else str(message),
            tuple(str(line) for line in trace) if isinstance(trace, list) else (),
            raw=posted,
        )
    return LambdaError(header or default, body.decode("utf-8", "replace"), ())


def _value(body: bytes) -> Any:
    # Lambda passes the runtime's bytes through; pipelined's callers want the JSON value they hold.
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


async def _read(request: web.BaseRequest, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class RuntimeApi:
    """The request handler of one worker's endpoint (an aiohttp low-level server)."""

    def __init__(self, worker: ApiWorker, function_arn: str) -> None:
        self.worker = worker
        self.function_arn = function_arn

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if not path.startswith(PREFIX):
            return web.Response(status=404, text="404 page not found")
        route = path[len(PREFIX) :]
        if route == "invocation/next" and request.method == "GET":
            return await self._next()
        if route == "init/error" and request.method == "POST":
            return await self._init_error(request)
        parts = route.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and request.method == "POST":
            if parts[2] == "response":
                return await self._response(request, parts[1])
            if parts[2] == "error":
                return await self._invocation_error(request, parts[1])
        return web.Response(status=404, text="404 page not found")

    async def _next(self) -> web.StreamResponse:
        worker = self.worker
        if worker.state == "Running":
            return _forbidden(worker, "Ready")
        worker.state = "Ready"
        # The first request for an invocation is the end of init, as on Lambda.
        worker.init_done()
        pending = worker.take_next()
        if pending is None:
            if worker.waiter is not None and not worker.waiter.done():
                worker.waiter.set_result(None)  # a runtime polling twice: the older request gives up
            worker.waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                pending = await waiter
            finally:
                if worker.waiter is waiter:
                    worker.waiter = None
        if pending is None:
            return _error(500, "InternalServerError", "Internal Server Error")
        worker.state = "Running"
        return web.Response(
            body=pending.event,
            content_type="application/json",
            headers={
                "Lambda-Runtime-Aws-Request-Id": pending.request_id,
                "Lambda-Runtime-Deadline-Ms": str(pending.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
                "Lambda-Runtime-Trace-Id": pending.trace_id or new_trace_id(),
            },
        )

    def _check(self, request_id: str, target: str) -> web.Response | None:
        worker = self.worker
        if worker.state != "Running" or worker.pending is None:
            return _forbidden(worker, target)
        if request_id != worker.pending.request_id:
            return _error(400, "InvalidRequestID", "Invalid request ID")
        return None

    async def _response(self, request: web.BaseRequest, request_id: str) -> web.StreamResponse:
        refused = self._check(request_id, "InvocationResponse")
        if refused is not None:
            return refused
        worker = self.worker
        if request.headers.get(RESPONSE_MODE_HEADER):
            # Response streaming is not supported: the invocation fails as Lambda fails a bad mode.
            worker.state = "RuntimeResponseSentState"
            worker.answer(
                error=LambdaError(
                    "Runtime.InvalidResponseModeHeader",
                    "pipelined does not support response streaming "
                    f"({RESPONSE_MODE_HEADER}: {request.headers[RESPONSE_MODE_HEADER]})",
                )
            )
            return _error(400, "InvalidFunctionResponseMode", "Invalid function response mode")
        body = await _read(request, MAX_RESPONSE)
        worker.state = "RuntimeResponseSentState"
        if body is None:
            worker.answer(
                error=LambdaError(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
                )
            )
            return _error(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
            )
        worker.answer(value=_value(body))
        return _json(202, {"status": "OK"})

    async def _invocation_error(self, request: web.BaseRequest, request_id: str) -> web.StreamResponse:
        refused = self._check(request_id, "InvocationErrorResponse")
        if refused is not None:
            return refused
        body = await _read(request, MAX_RESPONSE) or b""
        self.worker.state = "RuntimeResponseSentState"
        self.worker.answer(error=runtime_error(body, request.headers.get(ERROR_TYPE_HEADER), "Unhandled"))
        return _json(202, {"status": "OK"})

    async def _init_error(self, request: web.BaseRequest) -> web.StreamResponse:
        worker = self.worker
        if worker.state != "Started":
            return _forbidden(worker, "InitError")
        body = await _read(request, MAX_RESPONSE) or b""
        worker.state = "InitError"
        worker.init_done(runtime_error(body, request.headers.get(ERROR_TYPE_HEADER), "Runtime.InitError"))
        return _json(202, {"status": "OK"})


async def serve(worker: ApiWorker, function_arn: str) -> None:
    """Serve the Runtime API on the worker's listening socket until the worker stops."""
    handler = RuntimeApi(worker, function_arn)
    server = web.Server(handler, access_log=None)
    worker.server = await asyncio.get_running_loop().create_server(server, sock=worker.listener)
    if worker.closing:
        worker.server.close()
