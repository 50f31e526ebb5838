#!/usr/bin/env python3
"""What promptd adds to an LLM call (DESIGN.md, "Where it must be fast").

Runs a zero-latency Ollama-shaped backend (a canned /api/chat answer, in
its own process), a daemon pointed at it, and measures in the same run:
  - latency of `improve` through the daemon vs the same HTTP request sent
    directly to the backend (the exact body the daemon sends), with 1 and
    64 concurrent clients: p50, p99 and the difference (added latency);
  - requests/s through the daemon vs direct, 64 clients.
Both paths use the same asyncio client code style (keep-alive, no JSON
parsing of the answer), so the difference is the daemon: the Unix socket
hop, JSON-RPC, building the provider request, curl, parsing and
validating the model output, building the result.

    python3 tests/bench/bench_improve.py [--build build] [--requests 1000] [--seconds 3]
"""
import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))

IDEA = "email my landlord about the broken heater"


# ---- the backend (runs in a child process) ----

def canned_answer():
    from fake_llm import DEFAULT_RESULT
    body = json.dumps({
        "model": "llama3.2:3b", "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": json.dumps(DEFAULT_RESULT)},
        "done": True, "done_reason": "stop", "prompt_eval_count": 100, "eval_count": 50,
    }).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)) + body


async def read_http_message(reader):
    """(head bytes, body bytes) of one HTTP/1.1 message with Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


def serve_backend():
    answer = canned_answer()
    last = {"body": b"{}"}

    async def handle(reader, writer):
        try:
            while True:
                head, body = await read_http_message(reader)
                if head.startswith(b"GET /_last"):
                    b = last["body"]
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
                else:
                    last["body"] = body
                    writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---- clients ----

class Direct:
    """Keep-alive HTTP client for the backend."""

    def __init__(self, port, body):
        self.port = port
        self.request = (b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                        % len(body)) + body

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self):
        self.writer.write(self.request)
        _, body = await read_http_message(self.reader)
        assert body.startswith(b"{"), body[:100]

    def close(self):
        self.writer.close()


class ViaDaemon:
    """Keep-alive JSON-RPC client for the daemon's Unix socket."""

    def __init__(self, path):
        self.path = path
        self.line = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "improve",
                                 "params": {"idea": IDEA, "record": False}}) + "\n").encode()

    async def open(self):
        self.reader, self.writer = await asyncio.open_unix_connection(self.path, limit=1 << 22)

    async def call(self):
        self.writer.write(self.line)
        line = await self.reader.readline()
        assert b'"result"' in line, line[:300]

    def close(self):
        self.writer.close()


async def latencies(make, clients, per_client):
    """Per-request latencies (s) with `clients` concurrent connections."""
    conns = [make() for _ in range(clients)]
    for c in conns:
        await c.open()
    for c in conns:  # warm-up: connections, caches
        for _ in range(3):
            await c.call()
    out = []

    async def run(c):
        for _ in range(per_client):
            t0 = time.perf_counter()
            await c.call()
            out.append(time.perf_counter() - t0)

    await asyncio.gather(*(run(c) for c in conns))
    for c in conns:
        c.close()
    return out


async def throughput(make, clients, seconds):
    conns = [make() for _ in range(clients)]
    for c in conns:
        await c.open()
        await c.call()
    done = 0
    end = time.perf_counter() + seconds

    async def run(c):
        nonlocal done
        while time.perf_counter() < end:
            await c.call()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return done / elapsed


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    return "nproc %d, CPU %s, kernel %s %s, Python %s" % (
        os.cpu_count() or 0, model, platform.system(), platform.release(),
        platform.python_version())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("PROMPTD_BUILD", "build"))
    ap.add_argument("--requests", type=int, default=1000, help="samples per path and case")
    ap.add_argument("--seconds", type=float, default=3.0, help="throughput run per path")
    ap.add_argument("--serve-backend", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_backend:
        serve_backend()
        return 0
    os.environ["PROMPTD_BUILD"] = os.path.abspath(args.build)
    import harness  # reads PROMPTD_BUILD at import
    print("machine: %s" % machine())
    backend = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-backend"],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    port = int(backend.stdout.readline().split()[1])
    cfg = {"LLM_PROVIDER": "ollama", "LLM_BASE_URL": "http://127.0.0.1:%d" % port,
           "SQLITE_ENABLED": "false", "LOG_LEVEL": "warn", "MAX_CONCURRENT_REQUESTS": "64"}
    d = harness.Daemon(config=cfg).start()
    try:
        d.call("improve", {"idea": IDEA, "record": False})
        import urllib.request
        body = urllib.request.urlopen("http://127.0.0.1:%d/_last" % port).read()
        print("request body the daemon sends: %d bytes; answer: %d bytes"
              % (len(body), len(canned_answer())))
        results = {}
        for clients in (1, 64):
            # Alternate the two paths in slices so that noise from the rest
            # of the machine lands on both alike.
            slices = 10 if clients == 1 else 2
            per = max(slices, args.requests // clients) // slices
            direct, daemon = [], []
            for _ in range(slices):
                direct += asyncio.run(latencies(lambda: Direct(port, body), clients, per))
                daemon += asyncio.run(latencies(lambda: ViaDaemon(d.socket), clients, per))
            results[clients] = (direct, daemon)
        rps_direct = asyncio.run(throughput(lambda: Direct(port, body), 64, args.seconds))
        rps_daemon = asyncio.run(throughput(lambda: ViaDaemon(d.socket), 64, args.seconds))
    finally:
        d.stop()
        d.cleanup()
        backend.terminate()
        backend.wait()

    print()
    print("%-10s %-8s %9s %9s %9s" % ("clients", "path", "p50 ms", "p99 ms", "samples"))
    for clients, (direct, daemon) in results.items():
        for name, xs in (("direct", direct), ("promptd", daemon)):
            print("%-10d %-8s %9.3f %9.3f %9d" % (clients, name, pct(xs, 50) * 1e3,
                                                  pct(xs, 99) * 1e3, len(xs)))
        print("%-10d %-8s %9.3f %9.3f   (promptd - direct)" % (
            clients, "added", (pct(daemon, 50) - pct(direct, 50)) * 1e3,
            (pct(daemon, 99) - pct(direct, 99)) * 1e3))
        print("%-10d %-8s %9.2fx %8.2fx   (promptd / direct)" % (
            clients, "ratio", pct(daemon, 50) / pct(direct, 50),
            pct(daemon, 99) / pct(direct, 99)))
    print()
    print("requests/s, 64 clients, zero-latency backend: direct %.0f, promptd %.0f (%.2fx)"
          % (rps_direct, rps_daemon, rps_daemon / rps_direct))
    return 0


if __name__ == "__main__":
    sys.exit(main())
