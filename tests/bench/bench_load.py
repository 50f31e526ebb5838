#!/usr/bin/env python3
"""1000 concurrent `improve` requests against a backend that takes 1 s to
answer: how many complete, how long `health` takes meanwhile (the loop must
stay responsive), and the daemon's RSS idle and under that load.

    python3 tests/bench/bench_load.py [--build build] [--requests 1000]
"""
import argparse
import asyncio
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))


ERRORS = {}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def pct(values, p):
    values = sorted(values)
    return values[int(p * (len(values) - 1))] if values else float("nan")


async def improve_batch(path, ids):
    """One connection pipelining several improves; returns how many succeeded."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 24)
    for i in ids:
        writer.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": "improve",
                                 "params": {"idea": "load test idea number %d" % i,
                                            "record": False}}).encode() + b"\n")
    await writer.drain()
    ok = 0
    for _ in ids:
        msg = json.loads(await reader.readline())
        ok += "result" in msg
        if "error" in msg:
            ERRORS[msg["error"]["message"][:100]] = ERRORS.get(msg["error"]["message"][:100], 0) + 1
    writer.close()
    return ok


async def health_probe(path, stop, samples):
    reader, writer = await asyncio.open_unix_connection(path)
    i = 0
    while not stop.is_set():
        i += 1
        t = time.perf_counter()
        writer.write(b'{"jsonrpc":"2.0","id":%d,"method":"health"}\n' % i)
        await writer.drain()
        await reader.readline()
        samples.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.01)
    writer.close()


async def run(path, n, per_conn, pid):
    stop = asyncio.Event()
    samples, peak = [], [0]

    async def rss_probe():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            await asyncio.sleep(0.05)

    probes = [asyncio.ensure_future(health_probe(path, stop, samples)),
              asyncio.ensure_future(rss_probe())]
    t = time.perf_counter()
    batches = [list(range(i, min(n, i + per_conn))) for i in range(0, n, per_conn)]
    done = await asyncio.gather(*(improve_batch(path, b) for b in batches))
    elapsed = time.perf_counter() - t
    stop.set()
    await asyncio.gather(*probes)
    return sum(done), elapsed, samples, peak[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("PROMPTD_BUILD", "build"))
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--per-connection", type=int, default=10)
    args = ap.parse_args()
    os.environ["PROMPTD_BUILD"] = os.path.abspath(args.build)
    from harness import Daemon  # noqa: E402 - needs PROMPTD_BUILD first
    from fake_llm import FakeLLM  # noqa: E402

    fake = FakeLLM("ollama", delay_s=1.0)
    fake.start()
    d = Daemon(env={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": fake.url, "LOG_LEVEL": "warn",
                    "MAX_CONCURRENT_REQUESTS": str(args.requests),
                    "MAX_QUEUED_REQUESTS": str(args.requests), "SQLITE_ENABLED": "false"})
    try:
        d.start()
        time.sleep(0.5)
        idle = rss_kb(d.proc.pid)
        ok, elapsed, samples, peak = asyncio.run(
            run(d.socket, args.requests, args.per_connection, d.proc.pid))
        # An idle health, measured after the load, is the baseline.
        quiet = []
        asyncio.run(_quiet_health(d.socket, quiet))
    finally:
        d.stop()
        d.cleanup()
        fake.stop()
    print("machine: %s, %d cores, %s %s" % (_cpu(), os.cpu_count(), platform.system(),
                                            platform.release()))
    print("%d concurrent improves, backend answering in 1 s:" % args.requests)
    print("  completed                 %d of %d in %.2f s" % (ok, args.requests, elapsed))
    print("  health during the load    p50 %.2f ms  p99 %.2f ms  (%d samples)"
          % (pct(samples, .5), pct(samples, .99), len(samples)))
    print("  health when idle          p50 %.2f ms  p99 %.2f ms" % (pct(quiet, .5),
                                                                    pct(quiet, .99)))
    print("  ratio loaded/idle p99     %.1fx" % (pct(samples, .99) / pct(quiet, .99)))
    for message, count in ERRORS.items():
        print("  failed %d: %s" % (count, message))
    print("RSS: idle %.1f MB, peak under load %.1f MB" % (idle / 1024, peak / 1024))
    return 0 if ok == args.requests else 1


async def _quiet_health(path, samples):
    stop = asyncio.Event()
    task = asyncio.ensure_future(health_probe(path, stop, samples))
    await asyncio.sleep(1.0)
    stop.set()
    await task


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown cpu"


if __name__ == "__main__":
    sys.exit(main())
