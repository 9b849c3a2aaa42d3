"""The daemon <-> worker wire format: length-prefixed JSON frames over a stream socket.

Every frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, an object whose
``t`` key names the message (see docs/isolation.md for the full list). JSON rather than pickle: the
daemon must never unpickle what a worker (running arbitrary handler code) sends it.

Frames are written and read with msgspec's JSON codec, 5-10x faster than the standard library's at the
size of an invocation's frames (docs/isolation.md, Cost). What msgspec refuses, the standard library
does: NaN and Infinity, lone surrogates. A handler's return value is encoded by the standard library
alone (`value_json`), as Lambda's Python runtime encodes it.
"""

from __future__ import annotations

import json
import socket
import threading
from decimal import Decimal
from typing import Any

import msgspec

HEADER = 4
# Bytes read per receive, into a buffer allocated once per channel (see BlockingChannel.receive).
READ_SIZE = 64 * 1024
# A worker that announces a bigger frame is treated as broken (Lambda's own payload limit is 6 MB).
MAX_FRAME = 64 * 1024 * 1024
# A worker that hit its memory limit exits with this status after reporting it (see worker.py).
EXIT_OOM = 86

# Message kinds, daemon -> worker. SETUP is the first frame on a new worker's channel: its spec.
SETUP = "setup"
INVOKE = "invoke"
# Message kinds, worker -> daemon.
READY = "ready"
INIT_ERROR = "init_error"
LOG = "log"
RESULT = "result"
OOM = "oom"


def json_default(value: Any) -> Any:
    """json.dumps' `default`: Decimal as a number, as Lambda's Python runtime serialises it."""
    # Decimal is what boto3's DynamoDB deserialiser returns.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, msgspec.Raw):  # a value_json() inside a frame msgspec could not encode
        return _DECODER.decode(bytes(value).decode())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Made once: json.dumps with options builds a new encoder on every call (~1 us of every frame).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=json_default)
_DECODER = json.JSONDecoder()
# Decimal as a number, as json_default writes it (msgspec's default is a string).
_FAST_ENCODER = msgspec.json.Encoder(decimal_format="number")
_FAST_DECODER = msgspec.json.Decoder()


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding `message`; raises TypeError/ValueError when it is not JSON-serialisable."""
    try:
        body = _FAST_ENCODER.encode(message)
    except (TypeError, ValueError):  # UnicodeEncodeError (a lone surrogate) is a ValueError
        body = _ENCODER.encode(message).encode()
    return len(body).to_bytes(HEADER, "big") + body


def value_json(value: Any) -> msgspec.Raw:
    """A handler's return value as Lambda's Python runtime serialises it (json.dumps), for a RESULT frame.

    Raises TypeError/ValueError when it is not serialisable (Runtime.MarshalError): msgspec would
    accept more (dataclasses, datetimes, sets) than a handler on Lambda can return.
    """
    return msgspec.Raw(_ENCODER.encode(value).encode())


def decode(body: bytes | bytearray | memoryview) -> Any:
    """The JSON value of one frame's body (raises FrameError when it is not JSON)."""
    try:
        return _FAST_DECODER.decode(body)
    except msgspec.DecodeError:
        pass
    # What the standard library writes but msgspec does not read: NaN, Infinity, lone surrogates.
    try:
        return _DECODER.decode(bytes(body).decode())
    except ValueError as exc:  # UnicodeDecodeError included
        raise FrameError(f"invalid JSON frame: {exc}") from None


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


class FrameBuffer:
    """Accumulates received bytes and yields complete messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> list[dict[str, Any]]:
        """Add `data`; return every message it completed (raises FrameError on garbage).

        `data` is only read during the call: it may be a view of the caller's receive buffer.
        """
        buffer = self._buffer
        if not buffer and len(data) >= HEADER:
            # The common case, one whole frame per read: decoded in place, never copied.
            size = int.from_bytes(data[:HEADER], "big")
            if len(data) == HEADER + size:
                return [_message(data[HEADER:])]
        buffer += data
        messages: list[dict[str, Any]] = []
        while len(buffer) >= HEADER:
            size = int.from_bytes(buffer[:HEADER], "big")
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME} byte limit")
            end = HEADER + size
            if len(buffer) < end:
                break
            message = _message(buffer[HEADER:end])
            del buffer[:end]
            messages.append(message)
        return messages


def _message(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    message = decode(body)
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise FrameError("frame is not an object with a 't' key")
    return message


class BlockingChannel:
    """The worker's end: blocking reads of whole frames, thread-safe writes."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._frames = FrameBuffer()
        self._ready: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._buffer = memoryview(bytearray(READ_SIZE))

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the daemon closed the connection."""
        while not self._ready:
            # recv_into one buffer: recv(256 KiB) would mmap and unmap a fresh one on every call.
            size = self._sock.recv_into(self._buffer)
            if not size:
                return None
            self._ready.extend(self._frames.feed(self._buffer[:size]))
        return self._ready.pop(0)

    def send(self, frame: bytes) -> None:
        """Write one encoded frame (handler threads may print while the main thread replies)."""
        with self._lock:
            self._sock.sendall(frame)
