"""``python -m bench [--quick] [--only NAME[,NAME]] [--output PATH]``

Runs the sections in order (limit, server, client, log, verify), prints each
figure as it is measured, then the whole table, and writes the figures, the
machine description and the date to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench._common import REPO, Results, git_revision, machine, table, write_json

SECTIONS = ("limit", "server", "client", "log", "verify")


def _runner(name: str, args: argparse.Namespace) -> Callable[[Results, bool, Path], None]:
    if name == "limit":
        from bench import limit

        return lambda r, q, w: limit.run(r, q)
    if name == "server":
        from bench import server_bench

        dbs = tuple(x.strip() for x in args.db.split(",") if x.strip()) or None
        workers = tuple(int(x) for x in args.workers.split(",") if x.strip()) or None
        return lambda r, q, w: server_bench.run(r, q, w, databases=dbs, workers=workers)
    if name == "client":
        from bench import client_bench

        return client_bench.run
    if name == "log":
        from bench import log_bench

        return log_bench.run
    from bench import verify_bench

    return verify_bench.run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    ap.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--output", type=Path, default=REPO / "bench" / "results.json")
    ap.add_argument("--db", default="", help="server section: sqlite,postgresql (default: "
                    "both; --quick: sqlite)")
    ap.add_argument("--workers", default="", help="server section: worker counts, e.g. 1,2")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    # stop the servers and the PostgreSQL cluster (finally blocks) on SIGTERM too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    print(f"sealkeeper benchmark ({'quick' if args.quick else 'full'}) on {info['cpu_model']}, "
          f"{info['cores']} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    results = Results()
    # 0755: the PostgreSQL cluster inside belongs to the postgres user
    work = Path(tempfile.mkdtemp(prefix="sealkeeper-bench-"))
    work.chmod(0o755)
    started = time.perf_counter()
    failed: list[str] = []
    try:
        for name in SECTIONS:
            if name not in only:
                continue
            t0 = time.perf_counter()
            load0 = os.getloadavg()
            print(f"\n== {name}", flush=True)
            try:
                _runner(name, args)(results, args.quick, work)
            except Exception:
                failed.append(name)
                traceback.print_exc()
                results.skip(name, f"section {name}", "failed: "
                             + traceback.format_exc().strip().splitlines()[-1][:300])
            results.sections.setdefault(name, {}).update(
                seconds=round(time.perf_counter() - t0, 1),
                load_average_before=[round(x, 2) for x in load0],
                load_average_after=[round(x, 2) for x in os.getloadavg()])
    finally:
        if "bench.servers" in sys.modules:
            sys.modules["bench.servers"].stop_shared()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    info["load_average_at_end"] = list(os.getloadavg())
    print("\n" + table(results))
    print(f"\n{len(results.figures)} figures in {elapsed:.0f} s; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    write_json(args.output, {
        "mode": "quick" if args.quick else "full",
        "sections_run": only,
        "seconds": round(elapsed, 1),
        "revision": git_revision(),
        "machine": info,
        "sections": results.sections,
        "figures": [f.to_json() for f in results.figures],
        "not_measured": results.skipped,
    })
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
