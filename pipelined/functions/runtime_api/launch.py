"""How a Runtime API worker is started: the program to run and its environment, exactly Lambda's."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pipelined.config.runtimes as names
from pipelined.config import FunctionConfig
from pipelined.functions.process.spec import worker_environment

# The shipped Node.js runtime client (JavaScript, no dependencies) and the directory it lives in.
RUNTIME_DIR = Path(__file__).resolve().parent / "node"
NODE_CLIENT = RUNTIME_DIR / "runtime.mjs"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
# V8's old space is capped below the function's memory, so a runaway heap ends in V8's own abort
# (Runtime.ExitError) before the environment's memory limit.
NODE_HEAP_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class Launch:
    """The program of one function's workers: argv, working directory and environment (less the API)."""

    argv: tuple[str, ...]
    code: str
    environment: Mapping[str, str]

    def message(self, api_address: str, provisioned: bool) -> dict[str, object]:
        """The zygote's spawn request (exec_worker.py) for a worker talking to `api_address`."""
        environment = dict(self.environment)
        environment["AWS_LAMBDA_RUNTIME_API"] = api_address
        environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = (
            "provisioned-concurrency" if provisioned else "on-demand"
        )
        return {"argv": list(self.argv), "code": self.code, "environment": environment}


def _shell_fix(program: Path) -> tuple[str, ...]:
    """argv for a bootstrap; `#!/bin/sh` scripts run with bash where /bin/sh is something else.

    Lambda's /bin/sh is bash (Amazon Linux), and bootstraps rely on it: AWS's own tutorial uses
    `set -o pipefail` and `source`, which dash refuses.
    """
    try:
        with program.open("rb") as file:
            first = file.readline(256)
    except OSError:
        return (str(program),)
    bash = shutil.which("bash", path=BASE_PATH)
    shell = first.split()[0] if first.startswith(b"#!") and first.split() else b""
    if shell != b"#!/bin/sh" or bash is None or Path("/bin/sh").resolve().name == "bash":
        return (str(program),)
    return (bash, *(arg.decode() for arg in first.split()[1:]), str(program))


def _node_path(config: FunctionConfig, major: int) -> str:
    # Lambda: /opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:
    # /var/runtime:/var/task, with each layer standing in for /opt.
    parts: list[str] = []
    for layer in config.layers:
        nodejs = layer / "nodejs"
        parts += [str(nodejs / f"node{major}" / "node_modules"), str(nodejs / "node_modules")]
    parts += [str(RUNTIME_DIR / "node_modules"), str(RUNTIME_DIR), str(config.code)]
    return ":".join(parts)


def launch_for(config: FunctionConfig, lambda_environment: Mapping[str, str]) -> Launch:
    """The Launch of a Node.js or `provided` function; the daemon's environment is read now."""
    runtime = config.runtime or ""
    layer_bins = [str(layer / "bin") for layer in config.layers]
    # Passed-through credentials and the common base, as for Python workers; the rest is per runtime.
    environment = worker_environment({}, os.environ)
    environment.pop("AWS_EXECUTION_ENV", None)
    environment["LAMBDA_RUNTIME_DIR"] = str(RUNTIME_DIR)
    libraries = [str(config.code), str(config.code / "lib"), *(str(layer / "lib") for layer in config.layers)]
    environment["LD_LIBRARY_PATH"] = ":".join(libraries)
    if names.family(runtime) == "nodejs":
        node = names.find_node(config.node or "node") or (config.node or "node")
        major = names.node_major(runtime)
        environment["PATH"] = ":".join([str(Path(node).parent), BASE_PATH, *layer_bins])
        environment["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtime}"
        environment["NODE_PATH"] = _node_path(config, major)
        heap = max(16, int(config.memory_mb * NODE_HEAP_SHARE))
        argv: tuple[str, ...] = (node, f"--max-old-space-size={heap}", str(NODE_CLIENT))
    else:
        # The provided family has no AWS_EXECUTION_ENV on Lambda.
        environment["PATH"] = ":".join([BASE_PATH, *layer_bins])
        bootstrap = names.find_bootstrap(config.code, list(config.layers))
        argv = _shell_fix(bootstrap) if bootstrap is not None else (str(config.code / "bootstrap"),)
    # Lambda's variables, then the function's own `environment`, last, so it wins.
    environment.update(lambda_environment)
    return Launch(argv=argv, code=str(config.code), environment=environment)
