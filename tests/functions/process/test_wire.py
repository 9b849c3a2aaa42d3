"""What crosses the daemon <-> worker channel arrives exactly as it left, as JSON in Lambda would."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelined.functions.function import Function
from pipelined.functions.process import protocol
from pipelined.functions.process.protocol import FrameBuffer, FrameError
from tests.support import invoke


async def test_event_values_reach_the_handler_and_come_back_unchanged(
    isolated: Callable[..., Function],
) -> None:
    event = {
        "big": 2**70,
        "negative_big": -(2**64) - 1,
        "float": 0.1,
        "whole_float": 1.0,
        "text": "é\u2028 日本 🎉",
        "lone_surrogate": "\ud800",
        "nested": [{"a": [None, True, False]}, []],
    }
    result = await invoke(isolated("echo"), event)
    assert result.ok, result.error
    assert result.value["event"] == event
    assert result.value["types"] == {
        "big": "int",
        "negative_big": "int",
        "float": "float",
        "whole_float": "float",
        "text": "str",
        "lone_surrogate": "str",
        "nested": "list",
    }


async def test_return_values_are_serialised_as_lambdas_python_runtime_does(
    isolated: Callable[..., Function],
) -> None:
    fn = isolated("returns")
    # json.dumps, as awslambdaric: a datetime is a marshal error, though faster JSON libraries take it.
    dated = await invoke(fn, {"kind": "datetime"})
    assert dated.error is not None and dated.error.error_type == "Runtime.MarshalError"
    assert dated.error.error_message == (
        "Unable to marshal response: Object of type datetime is not JSON serializable"
    )
    decimals = await invoke(fn, {"kind": "decimal"})
    assert decimals.value == {"whole": 2, "fraction": 1.5}
    assert isinstance(decimals.value["whole"], int)
    # json.dumps writes NaN and Infinity; the daemon reads them back as the floats they were.
    floats = await invoke(fn, {"kind": "nan"})
    assert floats.ok and math.isnan(floats.value["nan"]) and floats.value["inf"] == math.inf


# NaN and Infinity: the next test (JSON has neither).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_a_frame_holds_what_the_standard_library_would_round_trip(value: Any) -> None:
    [message] = FrameBuffer().feed(protocol.encode({"t": "x", "v": value}))
    assert message["v"] == json.loads(json.dumps(value))


def test_frames_split_or_joined_across_reads_are_each_decoded_once() -> None:
    first, second = protocol.encode({"t": "a", "n": 1}), protocol.encode({"t": "b", "n": 2})
    frames = FrameBuffer()
    stream = first + second
    received = [m for i in range(0, len(stream), 5) for m in frames.feed(memoryview(stream)[i : i + 5])]
    assert received == [{"t": "a", "n": 1}, {"t": "b", "n": 2}]
    assert FrameBuffer().feed(stream) == received


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid JSON frame"),
        (b"\xff\xfe", "invalid JSON frame"),
        (b"[1, 2]", "not an object with a 't' key"),
        (b'{"n": 1}', "not an object with a 't' key"),
    ],
)
def test_garbage_from_a_worker_is_a_frame_error(body: bytes, error: str) -> None:
    with pytest.raises(FrameError, match=error):
        FrameBuffer().feed(len(body).to_bytes(protocol.HEADER, "big") + body)


def test_an_oversized_frame_announcement_is_refused_before_it_is_read() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        FrameBuffer().feed((protocol.MAX_FRAME + 1).to_bytes(protocol.HEADER, "big") + b"{")


def test_a_nan_in_an_event_crosses_as_null_since_json_has_no_nan() -> None:
    [message] = FrameBuffer().feed(protocol.encode({"t": "x", "v": [math.nan, math.inf, 1.5]}))
    assert message["v"] == [None, None, 1.5]
