"""Every invocation's `_X_AMZN_TRACE_ID` is what Python, C code and subprocesses see, and costs no memory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from pipelined.functions.function import Function
from pipelined.invoke.service import InvocationKind, InvokeService

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad{};Sampled=1"


async def test_each_invocation_sees_its_own_trace_id_everywhere_even_after_the_handler_changed_it(
    isolated: Callable[..., Function],
) -> None:
    caller = InvokeService().caller(isolated("trace_views"), "test", InvocationKind.REQUEST_RESPONSE)
    # A longer header than any before it, too: the variable's buffer is replaced, not overrun.
    long_trace = TRACE.format(9) + ";Lineage=" + "a" * 600
    for n, then in enumerate(["none", "delete", "set", "none", "none"]):
        trace = TRACE.format(n) if n < 4 else long_trace
        result = await caller.invoke({"then": then}, trace_id=trace)
        assert result.ok, result.error
        assert result.value == {"os.environ": trace, "getenv": trace, "subprocess": trace}, then


# Sets a fresh value N times through the given way and prints how many bytes are then held more: by
# malloc (mallinfo2's in-use bytes, where glibc's setenv keeps its copies) and by Python's allocator
# (tracemalloc). The peak RSS would miss both while freed heap is being reused.
GROWTH = """
import ctypes, os, sys, tracemalloc
from pipelined.functions.process.environ_slot import EnvironSlot

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
slot = EnvironSlot("_X_AMZN_TRACE_ID")
def slot_after_the_handler(value):
    os.environ["_X_AMZN_TRACE_ID"] = "set by the handler"  # one value: glibc keeps one copy of it
    slot.set(value)

set_value = {
    "slot": slot.set,
    "slot after the handler": slot_after_the_handler,
    "os.environ": lambda v: os.environ.__setitem__("_X_AMZN_TRACE_ID", v),
}[sys.argv[1]]
set_value("warm-up")
tracemalloc.start()
before = mallinfo2().uordblks + tracemalloc.get_traced_memory()[0]
for n in range(200_000):
    set_value(f"Root=1-5759e988-{n:024x};Parent=53995c3f42cd8ad8;Sampled=0")
assert os.environ["_X_AMZN_TRACE_ID"].endswith(f"{n:024x};Parent=53995c3f42cd8ad8;Sampled=0")
print(mallinfo2().uordblks + tracemalloc.get_traced_memory()[0] - before)
"""


def _growth_bytes(way: str) -> int:
    done = subprocess.run([sys.executable, "-c", GROWTH, way], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_fresh_trace_id_per_invocation_does_not_grow_the_worker() -> None:
    # os.environ[...] = value (setenv) keeps every value it was ever given: ~27 MB for these 200,000.
    assert _growth_bytes("os.environ") > 10_000_000
    assert _growth_bytes("slot") < 100_000
    # A handler that sets the variable itself every time: the slot puts its own buffer back, no new one.
    assert _growth_bytes("slot after the handler") < 100_000
