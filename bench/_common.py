"""What every section of the benchmark shares: figures with their runs, the
machine description, CPU accounting from /proc, and the result table.

A :class:`Figure` holds the value of each run (the table shows the median,
min and max), optionally the limit it is compared with (measured in the same
run) and the target of issue 9 with a verdict. Nothing is asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SEALKEEPER = str(VENV_BIN / "sealkeeper")


# -- figures -------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@dataclass
class Figure:
    section: str
    name: str
    unit: str
    runs: list[float]
    #: the value this figure is compared with (same unit), and what it is
    limit: float | None = None
    limit_name: str | None = None
    #: "ratio" = median / limit (or, for ``ratio_inverse``, limit / median)
    ratio_inverse: bool = False
    target: str | None = None
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return stats(self.runs)["median"]

    @property
    def ratio(self) -> float | None:
        if self.limit is None or not self.runs or self.limit == 0 or self.median == 0:
            return None
        return self.limit / self.median if self.ratio_inverse else self.median / self.limit

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(stats(self.runs))
        d["ratio"] = self.ratio
        return d


class Results:
    """Figures collected by the sections, plus notes about what was not measured."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.skipped: list[dict[str, str]] = []
        self.sections: dict[str, dict[str, Any]] = {}

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        print("  " + one_line(fig), flush=True)
        return fig

    def skip(self, section: str, what: str, why: str) -> None:
        self.skipped.append({"section": section, "what": what, "why": why})
        print(f"  [not measured] {what}: {why}", flush=True)

    def find(self, section: str, name: str) -> Figure | None:
        for f in self.figures:
            if f.section == section and f.name == name:
                return f
        return None


# -- formatting ----------------------------------------------------------------


def fmt(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2g}"


def fmt_ratio(fig: Figure) -> str:
    r = fig.ratio
    if r is None:
        return ""
    return f"{r * 100:.1f} %" if not fig.ratio_inverse and r < 1 else f"{r:.2f}x"


def one_line(fig: Figure) -> str:
    s = stats(fig.runs)
    extra = ""
    for k in ("p50_ms", "p99_ms"):
        if k in fig.extra:
            extra += f"  {k[:3]} {fmt(fig.extra[k]['median'])} ms"
    if "server_cpu_us_per_signature" in fig.extra:
        extra += (f"  server cpu {fmt(fig.extra['server_cpu_us_per_signature'])} µs/sig"
                  f" (= {fmt(fig.extra['server_cpu_in_raw_signatures'])} raw signatures)")
    ratio = fmt_ratio(fig)
    verdict = "" if fig.met is None else ("  MET" if fig.met else "  MISSED")
    return (f"{fig.name}: {fmt(s['median'])} {fig.unit} (min {fmt(s['min'])}, max "
            f"{fmt(s['max'])}, n={len(fig.runs)}){extra}"
            f"{'  ratio ' + ratio if ratio else ''}{verdict}")


def table(results: Results) -> str:
    """The result table, Markdown (readable as plain text too)."""
    rows = ["| section | figure | median | min | max | unit | p50 / p99 ms | CPU µs/sig | "
            "vs limit | target |",
            "|---|---|--:|--:|--:|---|--:|--:|--:|---|"]
    for f in results.figures:
        s = stats(f.runs)
        lat = ""
        if "p50_ms" in f.extra:
            lat = f"{fmt(f.extra['p50_ms']['median'])} / {fmt(f.extra['p99_ms']['median'])}"
        target = ""
        if f.target:
            target = f"{f.target}: {'met' if f.met else 'MISSED'}" if f.met is not None \
                else f.target
        cpu = ""
        if "server_cpu_us_per_signature" in f.extra:
            cpu = (f"{fmt(f.extra['server_cpu_us_per_signature'])} "
                   f"({fmt(f.extra['server_cpu_in_raw_signatures'])} sig)")
        rows.append(f"| {f.section} | {f.name} | {fmt(s['median'])} | {fmt(s['min'])} | "
                    f"{fmt(s['max'])} | {f.unit} | {lat} | {cpu} | {fmt_ratio(f)} | {target} |")
    for sk in results.skipped:
        rows.append(f"| {sk['section']} | {sk['what']} | - | - | - | | | | | not measured: "
                    f"{sk['why']} |")
    return "\n".join(rows)


# -- timing helpers --------------------------------------------------------------


def rate_runs(fn: Callable[[], object], runs: int, seconds: float,
              per_call: int = 1) -> list[float]:
    """Calls per second of ``fn`` (× ``per_call``), one figure per run of ``seconds``."""
    t0 = time.perf_counter()
    fn()  # warm
    batch = max(1, min(16, int(0.002 / max(time.perf_counter() - t0, 1e-9))))
    out = []
    for _ in range(runs):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                fn()
            n += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        out.append(n * per_call / (now - start))
    return out


def time_runs(fn: Callable[[], object], runs: int, seconds: float) -> list[float]:
    """Microseconds per call of ``fn``, one figure per run of about ``seconds``."""
    return [1e6 / r for r in rate_runs(fn, runs, seconds)]


# -- running a command with its wall time and peak RSS -----------------------------

# A small launcher process runs the command: the peak RSS (ru_maxrss) that Linux
# reports for a child starts from the size of the process it was forked from, so a
# command forked directly from this (large) process would be charged our memory.
_LAUNCHER = """
import json, os, subprocess, sys, time
data = sys.stdin.buffer.read()
start = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
p.stdin.write(data)
p.stdin.close()
out = p.stdout.read()
_, status, usage = os.wait4(p.pid, 0)
wall = time.perf_counter() - start
sys.stdout.write(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": wall,
                             "out": out.decode(errors="replace")[-3000:],
                             "maxrss_kb": usage.ru_maxrss}))
"""


def run_measured(cmd: list[str], env: dict[str, str], stdin: bytes = b"",
                 timeout: float = 600) -> dict[str, Any]:
    """Run ``cmd``; return its exit code, wall seconds, peak RSS (MB) and output."""
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], input=stdin,
                       capture_output=True, env=env, timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"launcher failed: {r.stderr.decode(errors='replace')[-2000:]}")
    out: dict[str, Any] = json.loads(r.stdout)
    out["maxrss_mb"] = out["maxrss_kb"] * 1024 / 1e6
    return out


# -- /proc accounting ------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces: split after the closing parenthesis
    close = raw.rfind(")")
    return [raw[raw.find("(") + 1:close], *raw[close + 2:].split()]


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    # after comm: state(1) ppid(2) ... utime(12) stime(13)
    return (int(f[12]) + int(f[13])) / _TICK


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        f = _stat_fields(int(entry.name))
        if f is not None:
            children.setdefault(int(f[2]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            f = _stat_fields(int(entry.name))
            if f is not None and f[0] == name:
                out.append(int(entry.name))
    return out


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return float(total - idle), float(total)


class CpuMeter:
    """CPU seconds used by groups of processes, and the machine's busy share,
    between :meth:`start` and :meth:`stop`."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._sys0 = system_cpu()
        self._before = {g: {p: proc_cpu(p) for p in fn()} for g, fn in self.groups.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        busy1, total1 = system_cpu()
        out: dict[str, float] = {"wall_s": wall}
        for g, fn in self.groups.items():
            pids = set(fn()) | set(self._before[g])
            used = sum(proc_cpu(p) - self._before[g].get(p, 0.0) for p in pids)
            out[f"{g}_cores"] = max(used, 0.0) / wall
        busy0, total0 = self._sys0
        cores = os.cpu_count() or 1
        out["machine_busy_cores"] = (busy1 - busy0) / max(total1 - total0, 1) * cores
        return out


# -- the machine -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        system_openssl = subprocess.run(["openssl", "version"], capture_output=True,
                                        text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        system_openssl = ""
    pg = ""
    try:
        pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if pg_bin:
            pg = subprocess.run([str(pg_bin[-1]), "--version"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import sqlite3

    def version(mod: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:
            return ""

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "cryptography": cryptography.__version__,
        "cryptography_openssl": backend.openssl_version_text(),
        "system_openssl": system_openssl,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "packages": {m: version(m) for m in ("fastapi", "uvicorn", "starlette", "pydantic",
                                             "SQLAlchemy", "psycopg", "pyHanko",
                                             "asn1crypto", "argon2-cffi", "httptools",
                                             "uvloop")},
        "load_average_at_start": list(os.getloadavg()),
    }


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + (" (src has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
