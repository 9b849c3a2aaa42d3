"""The Runtime API's answers to a misbehaving runtime: Lambda's status codes and error objects."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from pipelined.functions.function import Function
from tests.support import invoke, until

# A bootstrap in Python that probes the API around one invocation and records every answer.
PROBE = """#!{python}
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
seen = []
def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(host, int(port))
    connection.request(method, "/2018-06-01/runtime" + path, body, headers or {{}})
    response = connection.getresponse()
    data = response.read()
    return response.status, dict(response.getheaders()), data
while True:
    status, headers, event = call("GET", "/invocation/next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    own = f"/invocation/{{request_id}}"
    mode = json.loads(event)["mode"]
    answers = {{"headers": headers}}
    if mode == "probe":
        answers["wrong_id"] = call("POST", "/invocation/not-the-id/response", b"1")[::2]
        answers["next_while_running"] = call("GET", "/invocation/next")[::2]
        answers["init_error_late"] = call("POST", "/init/error", b"{{}}")[::2]
        answers["first"] = call("POST", own + "/response", b'{{"ok": 1}}')[::2]
        answers["second"] = call("POST", own + "/response", b"2")[::2]
        answers["error_after"] = call("POST", own + "/error", b"{{}}")[::2]
    elif mode == "too_large":
        too_large = b"x" * (6 * 1024 * 1024 + 101)
        answers["large"] = call("POST", own + "/response", too_large)[::2]
    elif mode == "stream":
        streaming = {{"Lambda-Runtime-Function-Response-Mode": "streaming"}}
        answers["stream"] = call("POST", own + "/response", b"{{}}", streaming)[::2]
    elif mode == "plain_error":
        custom = {{"Lambda-Runtime-Function-Error-Type": "Custom.Type"}}
        answers["error"] = call("POST", own + "/error", b"not json", custom)[::2]
    with open(os.environ["RECORD_FILE"], "a") as out:
        line = {{k: v if k == "headers" else [v[0], v[1].decode()] for k, v in answers.items()}}
        out.write(json.dumps(line) + "\\n")
"""


def probe(tmp_path: Path) -> Path:
    code = tmp_path / "probe"
    code.mkdir()
    (code / "bootstrap").write_text(PROBE.format(python=sys.executable))
    (code / "bootstrap").chmod(0o755)
    return code


def lines(records: Path) -> list[str]:
    return records.read_text().splitlines() if records.exists() else []


async def answers(records: Path, count: int) -> dict[str, list[object]]:
    """The `count`-th record: the probe writes it after the invocation's result is already back."""
    await until(lambda: len(lines(records)) >= count)
    result: dict[str, list[object]] = json.loads(lines(records)[count - 1])
    return result


async def test_wrong_ids_second_responses_and_late_init_errors_change_nothing(
    function: Callable[..., Function], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    fn = function("probe", probe(tmp_path), runtime="provided", environment={"RECORD_FILE": str(records)})
    result = await invoke(fn, {"mode": "probe"})
    assert result.error is None and result.value == {"ok": 1}
    seen = await answers(records, 1)
    headers = seen.pop("headers")
    assert isinstance(headers, dict)
    assert headers["Lambda-Runtime-Aws-Request-Id"] == result.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == fn.arn
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert int(headers["Lambda-Runtime-Deadline-Ms"]) > 0
    assert seen["wrong_id"] == [
        400,
        '{"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}',
    ]
    transition = "State transition from {} to {} failed for runtime. Error: State transition is not allowed"
    forbidden = {
        "next_while_running": ("Running", "Ready"),
        "init_error_late": ("Running", "InitError"),
        "second": ("RuntimeResponseSentState", "InvocationResponse"),
        "error_after": ("RuntimeResponseSentState", "InvocationErrorResponse"),
    }
    for name, (state, target) in forbidden.items():
        status, body = seen[name]
        assert status == 403, name
        assert json.loads(str(body)) == {
            "errorMessage": transition.format(state, target),
            "errorType": "InvalidStateTransition",
        }
    assert seen["first"] == [202, '{"status": "OK"}']
    # The worker is still good for the next invocation.
    assert (await invoke(fn, {"mode": "probe"})).value == {"ok": 1}


async def test_oversized_and_streamed_responses_fail_the_invocation(
    function: Callable[..., Function], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    fn = function("probe", probe(tmp_path), runtime="provided", environment={"RECORD_FILE": str(records)})
    large = await invoke(fn, {"mode": "too_large"})
    assert large.error is not None and large.error.error_type == "Function.ResponseSizeTooLarge"
    assert (await answers(records, 1))["large"][0] == 413
    stream = await invoke(fn, {"mode": "stream"})
    assert stream.error is not None and stream.error.error_type == "Runtime.InvalidResponseModeHeader"
    assert (await answers(records, 2))["stream"][0] == 400
    plain = await invoke(fn, {"mode": "plain_error"})
    assert plain.error is not None
    assert plain.error.payload() == {"errorMessage": "not json", "errorType": "Custom.Type", "stackTrace": []}
    assert (await answers(records, 3))["error"] == [202, '{"status": "OK"}']
