"""Return values to HTTP responses, as API Gateway maps them for payload formats 1.0 and 2.0."""

from __future__ import annotations

import base64

import pytest

from pipelined.core.apigw_responses import MalformedResponseError, gateway_error, http_reply, rest_reply


def test_rest_merges_headers_with_multi_value_headers_winning() -> None:
    reply = rest_reply(
        {
            "statusCode": 201,
            "headers": {"A": "1", "B": True},
            "multiValueHeaders": {"a": ["x", "y"]},
            "body": "ok",
        },
        None,
        [],
    )
    assert reply.status == 201 and reply.body == b"ok"
    assert [(k, v) for k, v in reply.headers if k.lower() in ("a", "b")] == [
        ("a", "x"),
        ("a", "y"),
        ("B", "true"),
    ]
    assert reply.header("content-type") == "application/json"


@pytest.mark.parametrize(
    "value",
    [
        "just a string",
        {"statusCode": 200, "extra": 1},
        {"statusCode": "two hundred"},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "headers": {"X": 1}},
        {"statusCode": 99},
    ],
)
def test_rest_refuses_what_is_not_a_proxy_response(value: object) -> None:
    with pytest.raises(MalformedResponseError):
        rest_reply(value, None, [])


def test_rest_decodes_base64_only_for_binary_media_types() -> None:
    value = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x00").decode(),
    }
    value["isBase64Encoded"] = True
    assert rest_reply(value, "image/png", ["image/*"]).body == b"\x00"
    assert rest_reply(value, None, []).body == b"AA=="


def test_http_simple_response_is_200_json() -> None:
    reply = http_reply({"message": "Hello"})
    assert (reply.status, reply.body, reply.header("content-type")) == (
        200,
        b'{"message": "Hello"}',
        "application/json",
    )
    assert http_reply("Hello, world!").body == b'"Hello, world!"'


def test_http_cookies_and_base64() -> None:
    reply = http_reply(
        {
            "statusCode": 200,
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(b"\xff").decode(),
            "isBase64Encoded": True,
        }
    )
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert reply.body == b"\xff"


def test_gateway_errors_per_api() -> None:
    assert gateway_error("rest", "not_found").status == 403
    assert gateway_error("http", "not_found").status == 404
    assert gateway_error("rest", "throttled").status == 500
    assert gateway_error("url", "throttled").status == 429
    assert gateway_error("http", "timeout").status == 503
