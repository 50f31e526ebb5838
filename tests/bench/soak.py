#!/usr/bin/env python3
"""Soak: steady mixed load on the real daemon (ping, health, streamed and
plain improve against a fake Ollama, history reads) for a while, sampling
the daemon's RSS and open fds every 10 s. Prints a table, draws a PNG chart
with gnuplot when it is installed, and judges "no growth": after the first
minute, the last third's RSS and fd counts must not exceed the first
third's by more than the slack below.

    python3 tests/bench/soak.py [--minutes 10] [--out build/soak]
"""
import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from harness import Daemon  # noqa: E402
from fake_llm import FakeLLM  # noqa: E402

RSS_SLACK_KB = 2048   # allocator noise, SQLite's page cache settling
FD_SLACK = 2


def sample(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def worker(d, stop, counts, lock, seed):
    rnd = random.Random(seed)
    c = d.client(timeout=30)
    while not stop.is_set():
        op = rnd.random()
        try:
            if op < 0.4:
                c.result("ping")
            elif op < 0.55:
                c.result("health")
            elif op < 0.8:
                c.result("improve", {"idea": "write a haiku about soak test number %d" %
                                     rnd.randint(1, 10**6), "stream": rnd.random() < 0.5})
            elif op < 0.9:
                c.result("history.list", {"limit": 20})
            else:
                c.result("history.search", {"query": "haiku soak"})
            key = "ok"
        except Exception as e:  # noqa: BLE001 - counted and reported
            key = "error: %s" % str(e)[:80]
            c.close()
            c = d.client(timeout=30)
        with lock:
            counts[key] = counts.get(key, 0) + 1
    c.close()


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, %s %s" % (model, os.cpu_count(), platform.system(), platform.release())


def chart(rows, out):
    if not shutil.which("gnuplot"):
        print("gnuplot not installed: no chart (apt-get install gnuplot-nox)")
        return
    data = os.path.join(out, "soak.dat")
    with open(data, "w") as f:
        for t, rss, fds, done in rows:
            f.write("%d %d %d %d\n" % (t, rss, fds, done))
    png = os.path.join(out, "soak.png")
    script = (
        "set terminal png size 900,500; set output '%s';"
        "set title 'promptd soak: RSS and open fds'; set xlabel 'seconds';"
        "set ylabel 'RSS (kB)'; set y2label 'open fds'; set y2tics; set ytics nomirror;"
        "set y2range [0:*]; set yrange [0:*];"
        "plot '%s' using 1:2 with linespoints title 'RSS kB' axes x1y1,"
        "'%s' using 1:3 with linespoints title 'fds' axes x1y2" % (png, data, data))
    subprocess.run(["gnuplot", "-e", script], check=True)
    print("chart: %s" % png)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--out", default="build/soak")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    fake = FakeLLM("ollama", chunk_delay_s=0.001)
    fake.start()
    d = Daemon(env={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": fake.url, "LOG_LEVEL": "warn"})
    d.start()
    stop = threading.Event()
    counts, lock = {}, threading.Lock()
    threads = [threading.Thread(target=worker, args=(d, stop, counts, lock, i))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    rows = []
    start = time.monotonic()
    end = start + args.minutes * 60
    print("machine: %s" % machine())
    print("%8s %10s %6s %10s" % ("seconds", "RSS kB", "fds", "requests"))
    try:
        while time.monotonic() < end:
            time.sleep(min(args.interval, max(0, end - time.monotonic())))
            rss, fds = sample(d.proc.pid)
            with lock:
                done = sum(counts.values())
            rows.append((int(time.monotonic() - start), rss, fds, done))
            print("%8d %10d %6d %10d" % rows[-1], flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join()
        code = d.stop()
        d.cleanup()
        fake.stop()
    chart(rows, args.out)
    errors = {k: v for k, v in counts.items() if k != "ok"}
    steady = [r for r in rows if r[0] >= 60] or rows
    third = max(1, len(steady) // 3)
    first, last = steady[:third], steady[-third:]
    rss_growth = max(r[1] for r in last) - max(r[1] for r in first)
    fd_growth = max(r[2] for r in last) - max(r[2] for r in first)
    verdict = (rss_growth <= RSS_SLACK_KB and fd_growth <= FD_SLACK and not errors
               and code == 0)
    print("requests: %d ok, %d failed %s" % (counts.get("ok", 0), sum(errors.values()),
                                             errors or ""))
    print("growth after warm-up: RSS %+d kB (slack %d), fds %+d (slack %d)"
          % (rss_growth, RSS_SLACK_KB, fd_growth, FD_SLACK))
    print("soak: %s" % ("PASS (no growth)" if verdict else "FAIL"))
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
