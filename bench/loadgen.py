"""The load generator: a separate process that sends pre-built HTTP/1.1 requests
over keep-alive loopback connections and reports throughput and latency.

    python -m bench.loadgen SPEC.json  ->  JSON on stdout

The spec names the host, port, path, headers, a file of request bodies (one
per line, each sent at most once: approvals are single-use), the number of
connections, and the mode:

* ``closed``: every connection sends its next request as soon as the previous
  answer arrived (maximum throughput at that concurrency);
* ``rate``: requests are scheduled at a fixed rate, whatever the answers do;
  latency is measured from the scheduled time, so a stalled server is not
  hidden (no coordinated omission).

The load runs continuously for ``warmup + runs * duration`` seconds; answers
are then binned by completion time into the runs. Plain asyncio protocols and
pre-encoded requests keep the generator's own CPU use low (it shares the
machine with the server); it reports the CPU it used.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.need: int | None = None
        self.status = 0
        self.head_end = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        if self.need is None:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.buf[:i]).lower()
            self.status = int(head[9:12])
            j = head.find(b"\r\ncontent-length:")
            if j < 0:
                self._fail(RuntimeError("answer without content-length"))
                return
            k = head.find(b"\r\n", j + 2)
            length = int(head[j + 17:k if k >= 0 else len(head)])
            self.head_end = i + 4
            self.need = self.head_end + length
        if len(self.buf) >= self.need:
            body = bytes(self.buf[self.head_end:self.need]) if self.status != 200 else b""
            del self.buf[:self.need]
            self.need = None
            w, self.waiter = self.waiter, None
            if not w.done():
                w.set_result((self.status, body))

    def _fail(self, exc: BaseException) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail(exc or ConnectionError("connection closed by the server"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port = spec["host"], spec["port"]
    head = (f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\n" +
            "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items()))
    with open(spec["bodies"], "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    reuse = bool(spec.get("reuse_bodies", False))
    requests = [head.encode() + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies]
    warmup, runs, duration = spec["warmup"], spec["runs"], spec["duration"]
    total = warmup + runs * duration
    conns: list[_Conn] = []
    for _ in range(spec["connections"]):
        _, proto = await loop.create_connection(_Conn, host, port)
        conns.append(proto)

    done: list[tuple[float, float]] = []  # (completion time, latency)
    errors: dict[str, int] = {}
    samples: list[str] = []
    next_index = 0
    exhausted = False
    exhausted_at: float | None = None
    dropped = 0
    start = time.perf_counter()
    end = start + total
    cpu0 = time.process_time()

    def take() -> bytes | None:
        nonlocal next_index, exhausted, exhausted_at
        if next_index >= len(requests):
            if not reuse:
                if not exhausted:
                    exhausted, exhausted_at = True, time.perf_counter() - start
                return None
            next_index = 0
        r = requests[next_index]
        next_index += 1
        return r

    def record(status: int, body: bytes, t0: float) -> None:
        t1 = time.perf_counter()
        if status == 200:
            done.append((t1 - start, t1 - t0))
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1
            if len(samples) < 3:
                samples.append(body[:300].decode("utf-8", "replace"))

    async def closed_worker(c: _Conn) -> None:
        while time.perf_counter() < end:
            req = take()
            if req is None:
                return
            t0 = time.perf_counter()
            status, body = await c.request(req)
            record(status, body, t0)

    async def rate_driver() -> None:
        nonlocal dropped
        rate = float(spec["rate"])
        queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()

        async def worker(c: _Conn) -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                req, t_sched = item
                status, body = await c.request(req)
                record(status, body, t_sched)

        workers = [asyncio.create_task(worker(c)) for c in conns]
        i = 0
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = int((now - start) * rate) + 1
            while i < due:
                req = take()
                if req is None:
                    break
                queue.put_nowait((req, start + i / rate))
                i += 1
            if exhausted:
                break
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        while not queue.empty():  # scheduled but never sent: the server fell behind
            queue.get_nowait()
            dropped += 1
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)

    if spec["mode"] == "closed":
        await asyncio.gather(*(closed_worker(c) for c in conns))
    else:
        await rate_driver()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - start
    for c in conns:
        if c.transport is not None:
            c.transport.close()

    out_runs = []
    for r in range(runs):
        lo = warmup + r * duration
        hi = lo + duration
        lat = sorted(lat for t, lat in done if lo <= t < hi)
        stop = wall if exhausted_at is None else min(wall, exhausted_at)
        covered = (min(stop, hi) - lo) if stop > lo else 0.0
        if covered < duration * 0.9 or not lat:
            continue  # the requests ran out before this window was complete
        out_runs.append({
            "requests_per_s": len(lat) / duration,
            "p50_ms": lat[len(lat) // 2] * 1e3,
            "p90_ms": lat[int(len(lat) * 0.9)] * 1e3,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
            "max_ms": lat[-1] * 1e3,
            "mean_ms": statistics.fmean(lat) * 1e3,
        })
    return {"runs": out_runs, "ok": len(done), "errors": errors, "error_samples": samples,
            "exhausted": exhausted, "dropped": dropped, "sent": next_index, "wall_s": wall,
            "cpu_s": cpu, "connections": len(conns)}


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    result = asyncio.run(_main(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
