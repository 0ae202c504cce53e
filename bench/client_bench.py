"""Section ``client``: ``sealkeeper sign`` on PDFs of 1 MB, 50 MB and 200 MB.

The PDFs are generated here: pages that each carry one uncompressed RGB image
of about 1 MB (a scanned document, the usual large PDF). Each signing is a
fresh ``sealkeeper sign FILE --seal S --level L --password-stdin -o OUT``
process against a local server (SQLite, default argon2: the approval password
costs one argon2 check on the server per command). Wall time and the peak
RSS (``wait4``) of the process are compared with SHA-256 over the same file
(read from the page cache in 1 MiB chunks, in this process), and the RSS with
the target's allowance of 100 MB plus the file size.

A 1-page PDF gives the fixed cost of one command (interpreter start, imports,
the HTTP calls, the argon2 check; for B-LTA the time-stamps, OCSP and CRLs).
The same signing through the SDK (``SealkeeperClient.sign_pdfs``), timed inside
a process that is already running, separates what grows with the file from the
start-up of the command.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

from bench._common import SEALKEEPER, Figure, Results, run_measured, stats
from bench.servers import Demo, Server, shared_server

SECTION = "client"
MB = 1_000_000

def make_pdf(path: Path, size: int, *, seed: bytes = b"") -> Path:
    """A valid PDF of about ``size`` bytes: one ~1 MB uncompressed image per page."""
    pages = max(1, round(size / MB))
    per_page = max(3000, size // pages - 600)
    width = int(math.sqrt(per_page / 3))
    height = max(1, per_page // (3 * width))
    block = (seed + os.urandom(width * height * 3))[:width * height * 3]
    offsets: list[int] = []
    with path.open("wb") as f:
        def obj(num: int, body: bytes, stream: bytes | None = None) -> None:
            offsets.append(f.tell())
            f.write(b"%d 0 obj\n" % num + body)
            if stream is not None:
                f.write(b"\nstream\n")
                f.write(stream)
                f.write(b"\nendstream")
            f.write(b"\nendobj\n")

        f.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        # 1 catalog, 2 pages, then per page: page, content, image
        kids = b" ".join(b"%d 0 R" % (3 + 3 * i) for i in range(pages))
        obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
        content = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
        for i in range(pages):
            n = 3 + 3 * i
            obj(n, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                   b"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
                % (n + 2, n + 1))
            obj(n + 1, b"<< /Length %d >>" % len(content), content)
            img = i.to_bytes(4, "big") + block[4:]
            obj(n + 2, b"<< /Type /XObject /Subtype /Image /Width %d /Height %d "
                       b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Length %d >>"
                % (width, height, len(img)), img)
        xref = f.tell()
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for off in offsets:
            f.write(b"%010d 00000 n \n" % off)
        f.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                % (len(offsets) + 1, xref))
    return path


def sha256_file_seconds(path: Path) -> float:
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    h = hashlib.sha256()
    start = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    h.digest()
    return time.perf_counter() - start


def sign_env(server: Server, demo: Demo, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALKEEPER_")}
    env.update(SEALKEEPER_URL=server.url, SEALKEEPER_TOKEN=demo.token,
               SEALKEEPER_CONFIG=str(work / "no-client-config.json"), COLUMNS="120")
    return env


def run_sign(pdf: Path, out: Path, level: str, server: Server, demo: Demo,
             work: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one ``sealkeeper sign`` process."""
    out.unlink(missing_ok=True)
    r = run_measured([SEALKEEPER, "sign", str(pdf), "--seal", demo.seal_id, "--level", level,
                      "--password-stdin", "-o", str(out)], sign_env(server, demo, work),
                     stdin=demo.approval_password.encode() + b"\n")
    if r["rc"] != 0 or not out.exists():
        raise RuntimeError(f"sealkeeper sign failed ({r['rc']}): {r['out'][-1500:]}")
    return float(r["wall"]), float(r["maxrss_mb"])


_SDK = """
import json, sys, time
from sealkeeper.client import cades, pades  # noqa: F401  (imported before the clock starts)
from sealkeeper.client.api import SealkeeperClient
url, token, seal, password, level, pdf, out = sys.argv[1:8]
with SealkeeperClient(url, token) as sk:
    start = time.perf_counter()
    sk.sign_pdfs([pdf], seal, approval_password=password, level=level, outputs=[out])
    print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def run_sdk(pdf: Path, out: Path, level: str, server: Server, demo: Demo,
            work: Path) -> tuple[float, float]:
    """(seconds inside ``SealkeeperClient.sign_pdfs``, peak RSS in MB of that process):
    the SDK in a process that is already running (no interpreter start, no imports)."""
    import json
    import sys

    out.unlink(missing_ok=True)
    r = run_measured([sys.executable, "-c", _SDK, server.url, demo.token, demo.seal_id,
                      demo.approval_password, level, str(pdf), str(out)],
                     sign_env(server, demo, work))
    if r["rc"] != 0 or not out.exists():
        raise RuntimeError(f"SDK signing failed ({r['rc']}): {r['out'][-1500:]}")
    return float(json.loads(r["out"].strip().splitlines()[-1])["seconds"]), float(r["maxrss_mb"])


def run(results: Results, quick: bool, work: Path) -> None:
    server = shared_server(work)
    demo = server.demo()
    sizes = [1 * MB] if quick else [1 * MB, 50 * MB, 200 * MB]
    levels = ["B-B"] if quick else ["B-B", "B-LTA"]
    runs = 2 if quick else 3
    pdf_dir = work / "pdfs"
    pdf_dir.mkdir(exist_ok=True)

    tiny = make_pdf(pdf_dir / "tiny.pdf", 20_000)
    fixed: dict[str, float] = {}
    for level in levels:
        walls = []
        for _ in range(runs):
            w, _rss = run_sign(tiny, pdf_dir / "tiny-signed.pdf", level, server, demo, work)
            walls.append(w)
        fixed[level] = stats(walls)["median"]
        results.sections.setdefault(SECTION, {})[f"fixed_cost_{level}_s"] = fixed[level]
        results.add(Figure(SECTION, f"sign a 1-page PDF (fixed cost), {level}", "s", walls,
                           note="interpreter start, imports, HTTP calls, one argon2 check "
                                "on the server" + (", 2 time-stamps, OCSP/CRL fetches"
                                                   if level == "B-LTA" else "")))
    for size in sizes:
        label = f"{size // MB} MB"
        pdf = make_pdf(pdf_dir / f"doc-{size // MB}mb.pdf", size)
        real = pdf.stat().st_size
        sha256_file_seconds(pdf)  # into the page cache
        sha = [sha256_file_seconds(pdf) for _ in range(max(3, runs))]
        sha_med = stats(sha)["median"]
        results.add(Figure(SECTION, f"sha256 of the {label} PDF (the limit)", "s", sha,
                           extra={"bytes": real}))
        for level in levels:
            walls, rss = [], []
            for _ in range(runs):
                w, r = run_sign(pdf, pdf_dir / f"doc-{size // MB}mb-signed.pdf", level,
                                server, demo, work)
                walls.append(w)
                rss.append(r)
            fig = results.add(Figure(
                SECTION, f"sealkeeper sign {label} PDF, {level}: wall time", "s", walls,
                limit=sha_med, limit_name="sha256 of the same file", target="<= 1.5x sha256",
                extra={"bytes": real, "mb_per_s": stats([real / MB / w for w in walls])}))
            fig.met = (fig.ratio or math.inf) <= 1.5
            sdk = [run_sdk(pdf, pdf_dir / f"doc-{size // MB}mb-sdk.pdf", level, server, demo,
                           work)[0] for _ in range(runs)]
            results.add(Figure(
                SECTION, f"SDK sign_pdfs {label} PDF, {level} (no process start)", "s", sdk,
                limit=sha_med, limit_name="sha256 of the same file",
                note="SealkeeperClient.sign_pdfs timed inside a running process: no "
                     "interpreter start or imports; the server round trips and its argon2 "
                     "check remain"))
            allowance = 100 + real / MB
            rfig = results.add(Figure(
                SECTION, f"sealkeeper sign {label} PDF, {level}: peak RSS", "MB", rss,
                limit=allowance, limit_name="100 MB + file size",
                target="<= 100 MB + file size" if size >= 200 * MB else None,
                extra={"file_mb": real / MB}))
            if size >= 200 * MB:
                rfig.met = rfig.median <= allowance
        if not quick or size > MB:
            (pdf_dir / f"doc-{size // MB}mb-signed.pdf").unlink(missing_ok=True)
            (pdf_dir / f"doc-{size // MB}mb-sdk.pdf").unlink(missing_ok=True)
        if size > MB:
            pdf.unlink(missing_ok=True)
