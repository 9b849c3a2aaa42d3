"""The gateway end to end: real HTTP against `pipelined run`, events and responses as API Gateway's."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.support import Reply, call
from tests.support import DaemonProcess, free_port, wait_until, write_config

H = "http_handlers."

# Keys of AWS's documented sample events (API Gateway developer guide: "set-up-lambda-proxy-integrations"
# for REST, "http-api-develop-integrations-lambda" for both formats; Lambda guide "urls-invocation").
REST_KEYS = {
    "resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext", "body",
    "isBase64Encoded",
}  # fmt: skip
REST_CONTEXT_KEYS = {
    "accountId", "apiId", "domainName", "domainPrefix", "extendedRequestId", "httpMethod", "identity", "path",
    "protocol", "requestId", "requestTime", "requestTimeEpoch", "resourceId", "resourcePath", "stage",
}  # fmt: skip
IDENTITY_KEYS = {
    "accessKey", "accountId", "caller", "cognitoAuthenticationProvider", "cognitoAuthenticationType",
    "cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId", "sourceIp", "user", "userAgent",
    "userArn",
}  # fmt: skip
HTTP_KEYS = {
    "version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters",
    "requestContext", "body", "pathParameters", "isBase64Encoded", "stageVariables",
}  # fmt: skip
HTTP_CONTEXT_KEYS = {
    "accountId", "apiId", "domainName", "domainPrefix", "http", "requestId", "routeKey", "stage", "time",
    "timeEpoch",
}  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def fn(handler: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"handler": H + handler, "events": list(events), **extra}


def api(path: str, method: str = "any") -> dict[str, Any]:
    return {"type": "api", "path": path, "method": method}


def http_api(path: str, method: str = "any", **extra: Any) -> dict[str, Any]:
    return {"type": "http_api", "path": path, "method": method, **extra}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon serving every route these tests call."""
    directory = tmp_path_factory.mktemp("gateway")
    port = free_port()
    config = write_config(
        directory,
        {
            "echo": fn("echo", api("/echo/{id}", "get"), api("/rest/{proxy+}"), api("/rest/fixed", "get")),
            "echo2": fn(
                "echo_v2",
                http_api("/v2/{id}"),
                http_api("/v2/{id}/more"),
                http_api("/v2/{proxy+}", "get"),
                {"type": "function_url"},
            ),
            "echo1": fn("echo", http_api("/v1/{id}", payload_format_version="1.0")),
            "cookies": fn("cookies", http_api("/cookies", "get")),
            "image": fn("image", api("/image", "post"), http_api("/image2", "post")),
            "fail": fn("fail", api("/fail", "get"), http_api("/fail2", "get")),
            "malformed": fn("malformed", api("/malformed", "get"), http_api("/malformed2", "get")),
            "slow": fn("slow", api("/slow", "get"), http_api("/slow2", "get"), timeout="10s"),
            "busy": fn(
                "slow", api("/busy", "get"), {"type": "function_url"}, reserved_concurrency=1, timeout="10s"
            ),
            "pets": fn("powertools_rest", api("/pets"), api("/pets/{proxy+}")),
            "orders": fn("powertools_http", http_api("/orders"), http_api("/orders/{proxy+}")),
            "items": fn(
                "fastapi_handler",
                http_api("/items/{proxy+}"),
                http_api("/teapot", "get"),
                {"type": "function_url", "prefix": "/items-url"},
            ),
        },
        gateway={
            "listen": f"127.0.0.1:{port}",
            "timeout": "2s",
            "binary_media_types": ["image/*"],
            "stage_variables": {"color": "blue"},
            "max_body_size": 1048576,
            "cors": {
                "allow_origins": ["https://app.example"],
                "allow_methods": ["GET", "POST"],
                "max_age": 600,
            },
        },
    )
    process = DaemonProcess(config).start()
    process.gateway_port = port  # type: ignore[attr-defined]
    yield process
    process.stop()


def req(gw: DaemonProcess, method: str, path: str, **kwargs: Any) -> Reply:
    return call(gw.gateway_port, method, path, **kwargs)  # type: ignore[attr-defined]


# --- events, key by key -------------------------------------------------------------------------


def test_rest_event_has_the_keys_and_values_of_aws_sample(gw: DaemonProcess) -> None:
    reply = req(
        gw, "GET", "/echo/42?name=me&multi=you&multi=me&sp=a%20b", headers=[("X-H", "1"), ("X-H", "2")]
    )
    assert reply.status == 200
    event = reply.json()
    assert set(event) == REST_KEYS
    assert set(event["requestContext"]) == REST_CONTEXT_KEYS
    assert set(event["requestContext"]["identity"]) == IDENTITY_KEYS
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"name": "me", "multi": "me", "sp": "a b"}
    assert event["multiValueQueryStringParameters"] == {"name": ["me"], "multi": ["you", "me"], "sp": ["a b"]}
    assert event["headers"]["X-H"] == "2"
    assert event["multiValueHeaders"]["X-H"] == ["1", "2"]
    assert event["stageVariables"] == {"color": "blue"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod" and context["path"] == "/prod/echo/42"
    assert context["resourcePath"] == "/echo/{id}" and context["httpMethod"] == "GET"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["protocol"] == "HTTP/1.1"
    # One request id: the response header, the handler's context, and the START/END/REPORT lines.
    request_id = reply.header("x-amzn-RequestId")
    assert request_id == context["requestId"] == reply.header("X-Request-Id-Seen")
    wait_until(lambda: f"REPORT RequestId: {request_id}" in gw.logs(), message="REPORT line")
    assert f"START RequestId: {request_id}" in gw.logs()
    assert reply.all("X-Multi") == ["one", "two"]


def test_rest_event_without_query_or_body_sends_nulls(gw: DaemonProcess) -> None:
    event = req(gw, "GET", "/rest/fixed").json()
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None


def test_http_api_event_has_the_keys_and_values_of_aws_sample(gw: DaemonProcess) -> None:
    reply = req(
        gw,
        "POST",
        "/v2/7?parameter1=value1&parameter1=value2&parameter2=value",
        headers=[("Header2", "value1"), ("Header2", "value2"), ("Cookie", "cookie1=a; cookie2=b")],
        body=b"Hello from client!",
    )
    event = reply.json()
    assert set(event) == HTTP_KEYS
    assert set(event["requestContext"]) == HTTP_CONTEXT_KEYS
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "ANY /v2/{id}"
    assert event["rawPath"] == "/v2/7"
    assert event["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert event["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert event["cookies"] == ["cookie1=a", "cookie2=b"]
    assert event["headers"]["header2"] == "value1,value2"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["pathParameters"] == {"id": "7"}
    assert event["body"] == "Hello from client!" and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http == {
        "method": "POST",
        "path": "/v2/7",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert event["requestContext"]["stage"] == "$default"
    assert reply.header("apigw-requestid") == event["requestContext"]["requestId"]


def test_http_api_event_leaves_out_empty_keys(gw: DaemonProcess) -> None:
    event = req(gw, "GET", "/v2/7").json()
    for key in ("cookies", "queryStringParameters", "body"):
        assert key not in event


def test_http_api_payload_1_0(gw: DaemonProcess) -> None:
    event = req(gw, "GET", "/v1/3?a=1").json()
    assert event["version"] == "1.0"
    assert set(event) == REST_KEYS | {"version"}
    assert event["pathParameters"] == {"id": "3"}
    assert event["requestContext"]["stage"] == "$default"


def test_function_url_event_is_2_0_below_its_prefix(gw: DaemonProcess) -> None:
    event = req(gw, "GET", "/echo2/some/path?x=1").json()
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path"
    assert event["requestContext"]["http"]["path"] == "/some/path"
    assert "pathParameters" not in event and "stageVariables" not in event
    assert len(event["requestContext"]["apiId"]) == 32
    assert req(gw, "GET", "/echo2").json()["rawPath"] == "/"


def test_most_specific_route_wins(gw: DaemonProcess) -> None:
    assert req(gw, "GET", "/rest/fixed").json()["resource"] == "/rest/fixed"
    assert req(gw, "POST", "/rest/fixed").json()["resource"] == "/rest/{proxy+}"
    assert req(gw, "GET", "/rest/a/b/c").json()["pathParameters"] == {"proxy": "a/b/c"}
    assert req(gw, "GET", "/v2/1/more").json()["routeKey"] == "ANY /v2/{id}/more"
    assert req(gw, "GET", "/v2/1/other").json()["routeKey"] == "GET /v2/{proxy+}"
    assert req(gw, "POST", "/v2/1/other").status == 404


# --- responses --------------------------------------------------------------------------------------


def test_cookies_become_set_cookie_headers(gw: DaemonProcess) -> None:
    reply = req(gw, "GET", "/cookies", headers=[("Cookie", "x=1; y=2")])
    assert reply.status == 201
    assert reply.all("Set-Cookie") == ["a=1; Path=/", "b=2; Max-Age=60"]
    assert reply.header("X-Seen-Cookies") == "x=1;y=2"
    assert reply.body == b"made"


@pytest.mark.parametrize("path", ["/image", "/image2"])
def test_an_image_in_and_an_image_out(gw: DaemonProcess, path: str) -> None:
    reply = req(gw, "POST", path, headers=[("Content-Type", "image/png"), ("Accept", "image/png")], body=PNG)
    assert reply.status == 200
    assert reply.header("X-In-Base64") == "true"
    assert reply.header("Content-Type") == "image/png"
    assert reply.body == bytes(reversed(PNG))


def test_text_body_is_sent_as_text(gw: DaemonProcess) -> None:
    event = req(gw, "POST", "/v2/1", headers=[("Content-Type", "application/json")], body=b'{"a": 1}').json()
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
    event = req(
        gw, "POST", "/v2/1", headers=[("Content-Type", "application/octet-stream")], body=b"\x00\xff"
    ).json()
    assert base64.b64decode(event["body"]) == b"\x00\xff" and event["isBase64Encoded"] is True


# --- failures as API Gateway reports them -----------------------------------------------------------


def test_handler_error_is_502_for_rest_and_500_for_http_api(gw: DaemonProcess) -> None:
    rest = req(gw, "GET", "/fail")
    assert (rest.status, rest.body) == (502, b'{"message": "Internal server error"}')
    http = req(gw, "GET", "/fail2")
    assert (http.status, http.body) == (500, b'{"message":"Internal Server Error"}')


def test_malformed_response_is_502_for_rest_and_500_for_http_api(gw: DaemonProcess) -> None:
    assert req(gw, "GET", "/malformed").status == 502
    assert req(gw, "GET", "/malformed2").status == 500
    assert "malformed Lambda proxy response" in gw.logs()


def test_integration_timeout_is_504_for_rest_and_503_for_http_api(gw: DaemonProcess) -> None:
    rest = req(gw, "GET", "/slow?sleep=3")
    assert (rest.status, rest.body) == (504, b'{"message": "Endpoint request timed out"}')
    http = req(gw, "GET", "/slow2?sleep=3")
    assert (http.status, http.body) == (503, b'{"message":"Service Unavailable"}')


def test_no_route_is_404_on_a_gateway_with_http_apis(gw: DaemonProcess) -> None:
    reply = req(gw, "GET", "/nowhere")
    assert (reply.status, reply.body) == (404, b'{"message":"Not Found"}')


def test_body_over_the_limit_is_413(gw: DaemonProcess) -> None:
    reply = req(gw, "POST", "/v2/1", body=b"x" * (1048576 + 1))
    assert reply.status == 413
    assert reply.body == b'{"message":"Request Entity Too Large"}'
    rest = req(gw, "POST", "/rest/upload", body=b"x" * 1048577)
    assert (rest.status, rest.body) == (413, b'{"message":"Request Too Long"}')


def test_reserved_concurrency_throttles_as_lambda_does(gw: DaemonProcess) -> None:
    results: list[Reply] = []
    first = threading.Thread(target=lambda: results.append(req(gw, "GET", "/busy?sleep=1.5")))
    first.start()
    wait_until(lambda: gw.metric("pipelined_concurrent_executions", function="busy") == 1, timeout=5)
    # API Gateway turns Lambda's throttle into a 500; a function URL passes Lambda's 429 on.
    rest = req(gw, "GET", "/busy")
    assert (rest.status, rest.body) == (500, b'{"message": "Internal server error"}')
    url = req(gw, "GET", "/busy/url")
    assert url.status == 429 and url.json()["message"] == "Rate Exceeded."
    first.join()
    assert results[0].status == 200
    for source in ("api-0", "function_url-1"):
        assert gw.metric("pipelined_throttles_total", function="busy", source=source) == 1


def test_cors_preflight_is_answered_by_the_gateway(gw: DaemonProcess) -> None:
    preflight = req(
        gw,
        "OPTIONS",
        "/v2/1",
        headers=[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-api-key"),
        ],
    )
    assert preflight.status == 204
    assert preflight.header("Access-Control-Allow-Origin") == "https://app.example"
    assert preflight.header("Access-Control-Allow-Methods") == "GET,POST"
    assert preflight.header("Access-Control-Allow-Headers") == "content-type,x-api-key"
    assert preflight.header("Access-Control-Max-Age") == "600"
    reply = req(gw, "GET", "/v2/1", headers=[("Origin", "https://app.example")])
    assert reply.header("Access-Control-Allow-Origin") == "https://app.example"
    other = req(gw, "GET", "/v2/1", headers=[("Origin", "https://evil.example")])
    assert other.header("Access-Control-Allow-Origin") is None


def test_metrics_per_route_and_status_class(gw: DaemonProcess) -> None:
    req(gw, "GET", "/fail2")
    assert gw.metric("pipelined_http_requests_total", api="http", route="GET /fail2", status_class="5xx") >= 1
    assert gw.metric("pipelined_http_errors_total", route="GET /fail2", kind="function_error") >= 1
    assert gw.metric("pipelined_http_request_duration_seconds_count", route="GET /fail2") >= 1
    assert gw.metric("pipelined_invocations_total", function="fail", source="http_api-1") >= 1


# --- web frameworks, unchanged -----------------------------------------------------------------------


def test_powertools_rest_resolver_app(gw: DaemonProcess) -> None:
    assert req(gw, "GET", "/pets").json() == {"pets": [{"id": "1", "name": "Rex"}]}
    assert req(gw, "GET", "/pets/1").json() == {"id": "1", "name": "Rex"}
    missing = req(gw, "GET", "/pets/9")
    assert missing.status == 404 and missing.json()["message"] == "no pet 9"
    created = req(
        gw, "POST", "/pets", headers=[("Content-Type", "application/json")], body=b'{"name": "Tom"}'
    )
    assert created.status == 201 and created.json() == {"created": {"name": "Tom"}}


def test_powertools_http_resolver_app(gw: DaemonProcess) -> None:
    assert req(gw, "GET", "/orders/o-1?q=fast").json() == {"order": "o-1", "q": "fast"}
    created = req(gw, "POST", "/orders", headers=[("Content-Type", "application/json")], body=b'{"n": 2}')
    assert created.status == 201 and created.json() == {"n": 2}
    missing = req(gw, "GET", "/orders/o-1/missing")
    assert missing.status == 404 and "nothing here" in missing.json()["message"]


@pytest.mark.parametrize("base", ["/items", "/items-url/items"])  # an HTTP API route, a function URL
def test_fastapi_app_behind_mangum(gw: DaemonProcess, base: str) -> None:
    created = req(
        gw,
        "POST",
        f"{base}/5",
        headers=[("Content-Type", "application/json")],
        body=b'{"name":"pen","price":1.5}',
    )
    assert created.status == 201, created.body
    assert created.json() == {"id": 5, "item": {"name": "pen", "price": 1.5}}
    assert req(gw, "GET", f"{base}/5?q=blue").json()["q"] == "blue"
    missing = req(gw, "GET", f"{base}/6")
    assert missing.status == 404 and missing.json() == {"detail": "item 6 not found"}
    invalid = req(
        gw, "POST", f"{base}/7", headers=[("Content-Type", "application/json")], body=b'{"name": 1}'
    )
    assert invalid.status == 422


def test_fastapi_raised_http_error(gw: DaemonProcess) -> None:
    teapot = req(gw, "GET", "/teapot")
    assert teapot.status == 418 and teapot.json() == {"detail": "I'm a teapot"}


# --- reloads and process isolation ---------------------------------------------------------------


def test_reload_adds_and_removes_routes_while_requests_are_in_flight(tmp_path: Path, daemon: Any) -> None:
    port = free_port()

    def configure(routes: dict[str, Any]) -> Path:
        return write_config(
            tmp_path,
            routes,
            isolation="process",
            gateway={"listen": f"127.0.0.1:{port}"},
        )

    config = configure(
        {
            "slow": fn("slow", api("/slow", "get"), timeout="10s"),
            "pets": fn("powertools_rest", api("/pets"), api("/pets/{proxy+}")),
        }
    )
    process = daemon(config)
    assert call(port, "GET", "/pets/1").json() == {"id": "1", "name": "Rex"}
    assert call(port, "GET", "/version").status == 403  # a REST-only gateway: Missing Authentication Token
    in_flight: list[Reply] = []
    slow = threading.Thread(target=lambda: in_flight.append(call(port, "GET", "/slow?sleep=2")))
    slow.start()
    wait_until(lambda: process.metric("pipelined_concurrent_executions", function="slow") == 1, timeout=10)
    configure(
        {
            "slow": fn("slow", api("/slow", "get"), timeout="10s"),
            "pets": fn("powertools_rest", api("/pets/{proxy+}")),
            "version": fn("version", http_api("/version", "get"), environment={"VERSION": "v2"}),
        }
    )
    process.send_signal(__import__("signal").SIGHUP)
    wait_until(lambda: call(port, "GET", "/version").status == 200, timeout=20, message="new route")
    assert call(port, "GET", "/version").body == b"v2"
    assert call(port, "GET", "/pets").status == 404  # removed, and the gateway now has an HTTP API
    assert call(port, "GET", "/pets/1").status == 200
    slow.join(10)
    assert in_flight and in_flight[0].status == 200 and in_flight[0].body == b"slept 2.0"
    assert json.loads(call(port, "GET", "/pets/1").body)["name"] == "Rex"
    # The functions behind the routes ran in worker processes.
    assert process.metric("pipelined_workers", function="pets") >= 1
