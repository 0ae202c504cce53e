"""Section ``verify``: ``sealkeeper verify`` time per signature.

PDFs of 1 MB are signed with ``sealkeeper sign`` against the shared local
server (the one of section ``client``): one with a single B-B signature, one
with five B-B signatures (signed again and again), and one with a single
B-LTA signature. Each is verified by a fresh ``sealkeeper verify FILE
--server URL --token T`` process (trust root from the server, revocation
fetched, usage-log inclusion checked). The time per signature is the slope
between one and five signatures; the intercept is the fixed cost of the
command.

When the ``verify`` command is not mounted on the ``sealkeeper`` application
yet but :mod:`sealkeeper.cli.verify` exists, the command is run through
``typer.run`` on that function (and the figure says so).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench._common import SEALKEEPER, Figure, Results, run_measured, stats
from bench.client_bench import MB, make_pdf, run_sign, sign_env
from bench.servers import shared_server

SECTION = "verify"


def verify_command() -> tuple[list[str] | None, str]:
    r = subprocess.run([SEALKEEPER, "verify", "--help"], capture_output=True, timeout=120)
    if r.returncode == 0:
        return [SEALKEEPER, "verify"], "sealkeeper verify"
    r = subprocess.run([sys.executable, "-c", "import sealkeeper.cli.verify"],
                       capture_output=True, timeout=120)
    if r.returncode == 0:
        return ([sys.executable, "-c", "import sys, typer; from sealkeeper.cli.verify "
                 "import verify; sys.argv[0] = 'sealkeeper verify'; typer.run(verify)"],
                "sealkeeper.cli.verify via typer.run (not mounted on the sealkeeper app)")
    return None, "no verify command: 'sealkeeper verify' is not there yet"


def run(results: Results, quick: bool, work: Path) -> None:
    cmd, how = verify_command()
    if cmd is None:
        results.skip(SECTION, "sealkeeper verify", how)
        return
    results.sections.setdefault(SECTION, {})["command"] = how
    server = shared_server(work)
    demo = server.demo()
    d = work / "verify"
    d.mkdir(exist_ok=True)
    base = make_pdf(d / "base.pdf", 1 * MB)
    signed: dict[str, Path] = {}
    current = base
    for k in range(1, 2 if quick else 6):
        out = d / f"bb-{k}.pdf"
        run_sign(current, out, "B-B", server, demo, work)
        current = out
    signed["1 B-B signature"] = d / "bb-1.pdf"
    if not quick:
        signed["5 B-B signatures"] = d / "bb-5.pdf"
        out = d / "lta-1.pdf"
        run_sign(base, out, "B-LTA", server, demo, work)
        signed["1 B-LTA signature"] = out

    env = sign_env(server, demo, work)
    runs = 2 if quick else 3
    times: dict[str, list[float]] = {}
    for label, pdf in signed.items():
        walls, rss = [], []
        for _ in range(runs):
            r = run_measured([*cmd, str(pdf), "--server", server.url, "--token", demo.token],
                             env, timeout=300)
            if r["rc"] != 0:
                raise RuntimeError(f"verify of {label} exited {r['rc']}: {r['out'][-1500:]}")
            walls.append(r["wall"])
            rss.append(r["maxrss_mb"])
        times[label] = walls
        results.add(Figure(SECTION, f"verify a 1 MB PDF with {label}", "s", walls,
                           note=how if "typer.run" in how else "",
                           extra={"peak_rss_mb": stats(rss)}))
    if quick:
        return
    one = times["1 B-B signature"]
    five = times["5 B-B signatures"]
    slope = [(f - o) / 4 for o, f in zip(sorted(one), sorted(five), strict=True)]
    results.add(Figure(SECTION, "verify: time per additional B-B signature", "s", slope,
                       note="(5 signatures - 1 signature) / 4; pairs of runs in order"))
    fixed = stats(one)["median"] - stats(slope)["median"]
    results.sections[SECTION]["fixed_cost_s"] = fixed
