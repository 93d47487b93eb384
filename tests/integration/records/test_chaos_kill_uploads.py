"""The chaos script runs in CI with 3 cycles: no acknowledged upload lost under SIGKILL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "chaos" / "kill_uploads.py"


def test_uploads_survive_the_server_being_killed(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--cycles", "3", "--seed", "7",
         "--instance", str(tmp_path / "chaos")],
        capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1])
    assert run.returncode == 0, run.stdout + run.stderr
    counts = dict(re.findall(r"(\w+)=(\w+)", run.stdout.splitlines()[-2]))
    assert counts["cycles"] == "3"
    assert int(counts["acknowledged"]) >= 3
    assert counts["lost"] == "0"
    assert counts["rows_without_blob"] == "0"
    assert counts["storage_verify"] == "ok" and counts["audit_verify"] == "ok"
    assert run.stdout.strip().endswith("PASS")
