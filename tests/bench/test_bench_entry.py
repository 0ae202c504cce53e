"""The benchmark's entry point keeps working: ``python -m bench --quick`` on the
sections that need no server prints the table and writes results.json with
medians, min and max, ratios to the limit and the machine description."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_limit_and_log_sections_write_results(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "limit,log", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| section | figure | median |" in proc.stdout
    data = json.loads(out.read_text())
    assert data["mode"] == "quick" and data["sections_run"] == ["limit", "log"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["date"]
    names = {f["name"]: f for f in data["figures"]}
    p256 = names["ECDSA P-256 sign, 1 core"]
    assert p256["min"] <= p256["median"] <= p256["max"] and p256["median"] > 0
    assert len(p256["runs"]) >= 3
    assert any(f["section"] == "log" and f["name"].startswith("inclusion proof")
               for f in data["figures"])
    # a figure with a target says whether it was met
    assert any(f["target"] and f["met"] in (True, False) for f in data["figures"])


def test_unknown_section_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--only", "nope"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown section" in proc.stderr
