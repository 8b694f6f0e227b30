"""A local Dask build opens sockets to loopback (and local unix sockets) only: checked with strace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_local_dask_build_contacts_only_loopback(tmp_path):
    pd.DataFrame({"text": [f"sentence number {i} about rivers" for i in range(40)]}).to_csv(tmp_path / "c.csv")
    trace = tmp_path / "strace.txt"
    cmd = ["strace", "-f", "-e", "trace=connect,sendto", "-o", str(trace), sys.executable, "-m", "encoderscope",
           "atlas", "build", str(tmp_path / "c.csv"), "--out", str(tmp_path / "a"), "--engine", "dask",
           "--shard-size", "10"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 and "ptrace" in done.stderr.lower():
        pytest.skip("ptrace is not permitted here")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = trace.read_text().splitlines()
    families = re.findall(r"sa_family=(AF_\w+)", "\n".join(lines))
    assert "AF_INET" in families  # the trace saw the cluster's own connections
    inet = re.findall(r'inet_(?:addr\("|pton\(AF_INET6, ")([^"]+)"', "\n".join(lines))
    assert inet and set(inet) <= {"127.0.0.1", "::1"}, sorted(set(inet))
    assert set(families) <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC"}
    # sendto with an explicit destination would be UDP (e.g. DNS): none at all
    assert not [line for line in lines if "sendto(" in line and "NULL, 0)" not in line and "resumed" not in line
                and "unfinished" not in line]
