"""Launching ``torchrun --standalone --nproc_per_node 2`` from tests (gloo on the CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def set_options(options: dict) -> list[str]:
    """``--set KEY=VALUE`` arguments setting exactly ``options``."""
    args: list[str] = []
    for key, value in options.items():
        args += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return args


def launch(args: list[str], cwd: Path, **popen: Any) -> subprocess.Popen:
    """Start ``torchrun`` with two processes of one thread each running ``args`` (a script
    and its arguments, or ``-m module ...``), outside any torchrun the tests run in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen, expect: int = 0, timeout: float = 400) -> tuple[str, str]:
    """Wait for a launch; its (stdout, stderr). Fails the test with its output when the exit
    status is not ``expect`` or it runs past ``timeout`` seconds."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail("torchrun timed out:\n" + stderr[-3000:])
    assert proc.returncode == expect, stdout[-3000:] + stderr[-3000:]
    return stdout, stderr
