"""systemd's notify protocol (READY, RELOADING, STOPPING, WATCHDOG) over $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("pipelined.systemd")


class Notifier:
    """Sends sd_notify messages when systemd asked for them; a no-op otherwise."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        watchdog_ours = not pid or pid == str(os.getpid())
        # Ping at half the watchdog period, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and watchdog_ours else None

    @property
    def enabled(self) -> bool:
        """True when running under systemd with Type=notify."""
        return bool(self._address)

    def notify(self, message: str) -> None:
        """Send one message like 'READY=1'; failures are logged, never raised."""
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("cannot notify systemd (%s): %s", message.split("\n", maxsplit=1)[0], exc)

    def ready(self, status: str = "") -> None:
        """Start-up (or reload) finished."""
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def reloading(self) -> None:
        """A reload started; systemd wants a monotonic timestamp with it."""
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        """Shutdown started."""
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        """The main loop is alive."""
        self.notify("WATCHDOG=1")
