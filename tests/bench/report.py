#!/usr/bin/env python3
"""`make bench`: runs every benchmark in tests/bench/, shows each one's own
output, then prints one summary table with the machine it ran on. Every
figure is a median or percentile next to a baseline measured in the same
run, or next to its target from the design.

    python3 tests/bench/report.py --build build [--rows 1000000]
"""
import argparse
import os
import platform
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def machine():
    model = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
            mem = ", %.1f GiB" % (kb / 1048576)
    except (OSError, StopIteration):
        pass
    return "%s x %d%s, %s %s" % (model, os.cpu_count(), mem, platform.system(), platform.release())


def run(title, cmd):
    print("\n==== %s: %s" % (title, " ".join(cmd)), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        print("(%s exited %d)" % (title, proc.returncode))
    return proc.stdout


def rpc_rows(out):
    rows = []
    m = re.search(r"bare Unix socket\s+([\d.]+) us\s+([\d.]+) us\s+promptd\s+([\d.]+) us\s+"
                  r"([\d.]+) us\s+ratio promptd/bare\s+([\d.]+)x\s+([\d.]+)x", out)
    if m:
        rows.append(("ping round trip p50 / p99", "%s / %s us" % (m.group(3), m.group(4)),
                     "bare socket %s / %s us: %sx / %sx (target within 2x)" % m.group(1, 2, 5, 6)))
    for n, pd, bare, ratio in re.findall(r"^\s+(\d+) client\(s\)\s+(\d+)\s+(\d+)\s+([\d.]+)", out,
                                         re.M):
        rows.append(("pipelined ping, %s client(s)" % n, "%s req/s" % pd,
                     "bare socket %s req/s (%sx); target >= 50000 with 32" % (bare, ratio)))
    return rows


def improve_rows(out):
    rows = []
    for clients, p50, p99 in re.findall(r"^(\d+)\s+added\s+([\d.-]+)\s+([\d.-]+)\s+\(promptd - direct\)",
                                        out, re.M):
        rows.append(("improve: added latency, %s client(s) p50 / p99" % clients,
                     "%s / %s ms" % (p50, p99), "over a direct request; target p99 < 1 ms"))
    m = re.search(r"requests/s, 64 clients, zero-latency backend: direct (\d+), promptd (\d+) "
                  r"\(([\d.]+)x\)", out)
    if m:
        rows.append(("improve requests/s, 64 clients", m.group(2) + " req/s",
                     "direct %s req/s (%sx)" % (m.group(1), m.group(3))))
    return rows


def load_rows(out):
    rows = []
    m = re.search(r"completed\s+(\d+) of (\d+) in ([\d.]+) s", out)
    if m:
        rows.append(("1000 concurrent improves, 1 s backend", "%s of %s in %s s" % m.groups(),
                     "all answered"))
    # Unpinned (the daemon shares the CPUs with the fake LLM and the load),
    # then pinned (the daemon alone on a CPU); bench_load.py prints both.
    for tag, name in (("", ""), (r" \(pinned\)", " (pinned)")):
        m = re.search(r"during the load%s\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms" % tag, out)
        q = re.search(r"when idle%s\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms" % tag, out)
        if m and q:
            rows.append(("health while they run%s p50 / p99" % name, "%s / %s ms" % m.groups(),
                         "idle %s / %s ms; target p99 < 5 ms" % q.groups()))
        c = re.search(r"daemon CPU in the load%s\s+([\d.]+) s on CPU \((\d+)%% of one CPU\), "
                      r"([\d.]+) s waiting for a CPU; idle ([\d.]+)%%" % tag, out)
        if c:
            rows.append(("daemon CPU during that load%s" % name, "%s s (%s%%)" % c.group(1, 2),
                         "idle %s%% of one CPU; %s s runnable but waiting for a CPU"
                         % c.group(4, 3)))
    m = re.search(r"RSS: idle ([\d.]+) MB, peak under load ([\d.]+) MB", out)
    if m:
        floor = re.search(r"RSS floor: ([\d.]+) MB .*promptd's own: ([+-][\d.]+) MB", out)
        target = "target idle < 8 MB"
        if floor:
            target += "; the libraries alone take %s MB (promptd's own %s MB)" % floor.groups()
        rows.append(("RSS idle / under that load", "%s / %s MB" % m.groups(), target))
    return rows


def store_rows(out):
    rows, section = [], ""
    for line in out.splitlines():
        if line and not line.startswith(" "):
            section = line.split(" (")[0].rstrip(":")
        m = re.match(r"^\s+(.+?)\s+([\d.]+) (\S+)\s+target (\S+) (\S+)\s+([\d.]+)x (\S+)", line)
        if m:
            what, value, unit, cmp, target, ratio, verdict = m.groups()
            row = ("%s: %s" % (section, what), "%s %s" % (value, unit),
                   "target %s %s (%sx, %s)" % (cmp, target, ratio, verdict))
            if row not in rows:  # bench_store repeats some figures in its recap
                rows.append(row)
        m = re.match(r"^\s+writer / (.+?)\s+([\d.]+x)$", line)
        if m:
            rows.append(("writer / %s" % m.group(1), m.group(2),
                         "its ceilings: the same rows in :memory:, same run"))
    return rows


def store_conclusions(out):
    """bench_store's verdicts computed from its ceilings."""
    return re.findall(r"^(ceiling: .*)$", out, re.M)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rows", default="1000000")
    args = ap.parse_args()
    b = args.build
    rows = []
    rows += rpc_rows(run("transport", [os.path.join(b, "bench", "bench_rpc"),
                                       os.path.join(b, "promptd")]))
    rows += improve_rows(run("improve", [sys.executable, os.path.join(HERE, "bench_improve.py"),
                                         "--build", b]))
    rows += load_rows(run("load", [sys.executable, os.path.join(HERE, "bench_load.py"),
                                   "--build", b]))
    store_out = run("history", [os.path.join(b, "bench", "bench_store"), "--rows", args.rows,
                                "--promptd", os.path.join(b, "promptd")])
    rows += store_rows(store_out)
    print("\n==== summary")
    print("machine: %s" % machine())
    w = max(len(r[0]) for r in rows) if rows else 10
    v = max(len(r[1]) for r in rows) if rows else 10
    print("| %-*s | %-*s | %s |" % (w, "figure", v, "measured", "baseline / target"))
    print("|%s|%s|%s|" % ("-" * (w + 2), "-" * (v + 2), "-" * 20))
    for r in rows:
        print("| %-*s | %-*s | %s |" % (w, r[0], v, r[1], r[2]))
    for line in store_conclusions(store_out):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
