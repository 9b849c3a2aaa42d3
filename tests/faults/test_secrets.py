"""One function must not read another's secrets under process isolation, even as the same user."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

USER = "pipelined-faults"


def unprivileged() -> list[str]:
    """The command prefix that runs a process as an unprivileged user (created if missing)."""
    if os.geteuid() != 0:
        return []  # already one
    try:
        pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("running as root without useradd: cannot create an unprivileged user")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True
        )
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--"]


def interpreter(prefix: list[str]) -> str:
    """A Python the user can exec (the zygote is exec'd too): the test's, or the system's 3.11."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/local/bin/{version}", f"/usr/bin/{version}"):
        # Through a shell: setpriv itself may still exec with root's file access.
        check = subprocess.run([*prefix, "/bin/sh", "-c", 'exec "$0" -c ""', candidate], capture_output=True)
        if check.returncode == 0:
            return candidate
    pytest.skip("no Python interpreter the unprivileged user may execute")


def test_a_function_cannot_read_another_functions_environment_from_its_worker_or_the_zygote() -> None:
    prefix = unprivileged()
    python = interpreter(prefix)
    command = [*prefix, python, "-m", "tests.faults.secrets_probe"]
    # The venv's packages, explicitly: another interpreter (or one whose home the user cannot read).
    paths = [str(ROOT), *(p for p in site.getsitepackages() if Path(p).is_dir())]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join(paths)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the unprivileged user cannot write into the checkout
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print(f"\nsecrets: holder {report['holder']}")
    for target, attempts in report["thief"].items():
        for channel, attempt in attempts.items():
            print(f"secrets: thief -> {target} {channel}: {attempt}")
    holder, thief = report["holder"], report["thief"]
    assert holder["has_secret"] and holder["pid"] != holder["zygote"]
    # The scan works: the thief finds its own variable in its own memory.
    assert thief["self"]["marker"]["found"], thief["self"]
    for target in ("holder", "zygote", "daemon"):
        for channel in ("environ", "mem"):
            attempt = thief[target][channel]
            assert not attempt["read"] and "PermissionError" in attempt["error"], (target, channel, attempt)
    # Nor did the thief inherit the secret from the zygote's heap.
    assert thief["self"]["mem"]["read"] and not thief["self"]["mem"]["found"], thief["self"]
