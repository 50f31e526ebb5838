#!/usr/bin/env python3
"""1000 concurrent `improve` requests against a backend that takes 1 s to
answer: how many complete, how long `health` takes meanwhile (the loop must
stay responsive), the daemon's CPU time, and its RSS idle and under load.

    python3 tests/bench/bench_load.py [--build build] [--requests 1000] [--runs 3]
                                      [--pin both|on|off] [--loop-trace]

So that the figures say where the time goes, every party has its own
process: the fake LLM, the load generator (this process) and the health
probe, which runs at real-time priority when allowed so its own wake-ups
do not count as the daemon's latency. Each mode runs --runs times; the
figures are medians over the runs, each next to the idle baseline of the
same runs:

  unpinned  every process on any CPU, as a desktop runs it: the daemon
            competes with the fake LLM and the load generator for CPUs;
  pinned    the daemon alone on CPU 0; the fake, the load generator and the
            probe on the other CPUs: what is left is the daemon's own loop.

"daemon CPU" is the daemon's on-CPU time during the load and the time it
was runnable but waiting for a CPU (from /proc/PID/task/*/schedstat), next
to its CPU use while idle; "CPU used" splits the machine's busy time among
the daemon, the fake, the load generator, the probe and everything else
(other processes, interrupts): when everything else is large, another job
disturbed the run and its figures are not the daemon's.
--loop-trace (needs perf) records the daemon's epoll_wait calls and prints
its longest loop iterations: the time between returning from epoll_wait
and calling it again, i.e. how long a request may wait for the loop.
"""
import argparse
import asyncio
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

BACKEND_DELAY_S = 1.0
IDLE_PROBE_S = 1.0
# "everything else" above this share of one CPU: the run was disturbed.
OTHERS_NOTE = 0.1
ERRORS = {}


def rss_floor_kb(build):
    """RSS of build/bench/rss_floor once it has initialised its libraries;
    None when it was not built."""
    exe = os.path.join(build, "bench", "rss_floor")
    if not os.access(exe, os.X_OK):
        return None
    p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != b"ready":
            return None
        return rss_kb(p.pid)
    finally:
        p.stdin.close()
        p.wait(timeout=10)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def pct(values, p):
    values = sorted(values)
    return values[int(p * (len(values) - 1))] if values else float("nan")


def median(values):
    return statistics.median(values) if values else float("nan")


# ---- the health probe: its own process, so neither the load generator
# nor the fake LLM (Python, one GIL each) delays its measurements ----

def probe_main(path, interval_s):
    """Waits for "start" on stdin, then calls health every interval_s until
    "stop", then prints the latencies (ms) as one JSON line. "quit" ends."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        prio = "real-time"
    except (AttributeError, OSError):
        prio = "normal"
    print(prio, flush=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    buf, samples, running, i = b"", [], False, 0
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], interval_s if running else None)
        if ready:
            cmd = sys.stdin.readline().strip()
            if cmd == "start":
                samples, running = [], True
            elif cmd == "stop":
                running = False
                print(json.dumps(samples), flush=True)
            else:
                return 0
            continue
        i += 1
        t = time.perf_counter()
        sock.sendall(b'{"jsonrpc":"2.0","id":%d,"method":"health"}\n' % i)
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return 1
            buf += chunk
        buf = buf.split(b"\n", 1)[1]
        samples.append((time.perf_counter() - t) * 1000)


class Probe:
    def __init__(self, path, interval_s):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--probe", path,
                                      "--probe-interval-ms", str(interval_s * 1000)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.priority = self.proc.stdout.readline().strip()

    def start(self):
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()

    def stop(self):
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ---- what the daemon costs ----

def sched_ns(pid):
    """(on-CPU ns, runnable-but-waiting ns) summed over the daemon's threads."""
    run = wait = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                a, b = f.read().split()[:2]
        except (OSError, ValueError):
            continue
        run += int(a)
        wait += int(b)
    return run, wait


TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """CPU seconds of a process, its finished threads included."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK_S


def cpus_busy_s():
    """Busy seconds of each CPU since boot (everything but idle and iowait)."""
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                t = [int(x) for x in ticks]
                busy[int(name[3:])] = (sum(t[:8]) - t[3] - t[4]) * TICK_S
    return busy


class CpuMeter:
    """Who used the CPUs between start() and stop(): the daemon, the fake
    LLM, this process (the load generator), the probe, and everything
    else (other processes, interrupts)."""

    def __init__(self, parties):
        self.parties = parties  # name -> pid

    def snapshot(self):
        return ({n: proc_cpu_s(p) for n, p in self.parties.items()}, cpus_busy_s())

    def start(self):
        self.before = self.snapshot()

    def stop(self, daemon_cpu):
        (p0, c0), (p1, c1) = self.before, self.snapshot()
        used = {n: p1[n] - p0[n] for n in p1}
        busy = {c: c1[c] - c0[c] for c in c1}
        used["else"] = max(0.0, sum(busy.values()) - sum(used.values()))
        # Pinned, the daemon's CPU held the daemon and whatever else ran there.
        used["else_on_daemon_cpu"] = max(0.0, busy.get(daemon_cpu, 0.0) - used["daemon"])
        return used


def pin(pid, cpus):
    """Sets the CPUs of every thread of pid (threads created later inherit)."""
    try:
        tasks = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        tasks = [pid]
    for t in tasks:
        try:
            os.sched_setaffinity(t, cpus)
        except OSError:
            pass


class LoopTrace:
    """perf records the daemon's epoll_wait entries and exits; a loop
    iteration's busy time is from one exit to the next entry."""

    def __init__(self, pid):
        self.dir = tempfile.mkdtemp(prefix="bench-load-")
        self.out = os.path.join(self.dir, "loop.perf")
        self.proc = subprocess.Popen(
            ["perf", "record", "-q", "-e", "syscalls:sys_enter_epoll_wait", "-e",
             "syscalls:sys_exit_epoll_wait", "-p", str(pid), "-o", self.out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # perf needs a moment to attach

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        script = subprocess.run(["perf", "script", "-i", self.out, "-F", "time,event"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        busy, left = [], None
        for line in script.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            t = float(parts[0].rstrip(":"))
            if "sys_exit" in parts[1]:
                left = t
            elif left is not None:
                busy.append((t - left) * 1000)
                left = None
        return busy


# ---- the load ----

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


async def load(path, n, per_conn, pid):
    stop = asyncio.Event()
    peak = [0]

    async def rss_probe():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            await asyncio.sleep(0.05)

    probe = asyncio.ensure_future(rss_probe())
    t = time.perf_counter()
    batches = [list(range(i, min(n, i + per_conn))) for i in range(0, n, per_conn)]
    done = await asyncio.gather(*(improve_batch(path, b) for b in batches))
    elapsed = time.perf_counter() - t
    stop.set()
    await probe
    return sum(done), elapsed, peak[0]


def one_run(args, pinned):
    """One daemon, one fake, one load; returns the run's figures."""
    from harness import Daemon  # noqa: E402 - needs PROMPTD_BUILD first
    from fake_llm import FakeLLMProcess  # noqa: E402

    cpus = sorted(os.sched_getaffinity(0))
    # Children inherit this process's CPUs: the fake and the probe, and the
    # daemon until it is moved to CPU 0.
    os.sched_setaffinity(0, set(ALL_CPUS[1:]) if pinned else set(ALL_CPUS))
    fake = FakeLLMProcess("ollama")
    d = probe = trace = None
    try:
        fake.configure(delay_s=BACKEND_DELAY_S)
        d = Daemon(env={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": fake.url, "LOG_LEVEL": "warn",
                        "MAX_CONCURRENT_REQUESTS": str(args.requests),
                        "MAX_QUEUED_REQUESTS": str(args.requests), "SQLITE_ENABLED": "false"})
        d.start()
        pid = d.proc.pid
        if pinned:
            pin(pid, {ALL_CPUS[0]})
        probe = Probe(d.socket, args.probe_interval_ms / 1000)
        meter = CpuMeter({"daemon": pid, "fake": fake.proc.pid, "probe": probe.proc.pid,
                          "load": os.getpid()})
        time.sleep(0.5)
        idle_rss = rss_kb(pid)
        if args.loop_trace:
            trace = LoopTrace(pid)
        before = sched_ns(pid)
        meter.start()
        probe.start()
        ok, elapsed, peak = asyncio.run(load(d.socket, args.requests, args.per_connection, pid))
        loaded = probe.stop()
        cpu = meter.stop(ALL_CPUS[0])
        after = sched_ns(pid)
        busy = trace.stop() if trace else None
        # An idle health, measured after the load, is the baseline.
        idle_before = sched_ns(pid)
        probe.start()
        time.sleep(IDLE_PROBE_S)
        idle = probe.stop()
        idle_after = sched_ns(pid)
    finally:
        if probe:
            probe.close()
        if d:
            d.stop()
            d.cleanup()
        fake.stop()
        os.sched_setaffinity(0, set(cpus))
    run = {"ok": ok, "elapsed": elapsed, "loaded": loaded, "idle": idle, "rss_idle": idle_rss,
           "rss_peak": peak, "busy": busy, "probe": probe.priority, "cpu": cpu}
    if before and after and idle_before and idle_after:
        run["cpu_s"] = (after[0] - before[0]) / 1e9
        run["wait_s"] = (after[1] - before[1]) / 1e9
        run["idle_cpu_share"] = (idle_after[0] - idle_before[0]) / 1e9 / IDLE_PROBE_S
    return run


# ---- the report ----

def summary(runs):
    """Medians over the runs of each run's own figures."""
    s = {"ok": min(r["ok"] for r in runs), "elapsed": median([r["elapsed"] for r in runs]),
         "samples": sum(len(r["loaded"]) for r in runs)}
    for key in ("loaded", "idle"):
        s[key + "_p50"] = median([pct(r[key], .5) for r in runs])
        s[key + "_p99"] = median([pct(r[key], .99) for r in runs])
        s[key + "_p99s"] = [pct(r[key], .99) for r in runs]
    if all("cpu_s" in r for r in runs):
        s["cpu_s"] = median([r["cpu_s"] for r in runs])
        s["wait_s"] = median([r["wait_s"] for r in runs])
        s["idle_cpu_share"] = median([r["idle_cpu_share"] for r in runs])
    s["cpu"] = {k: median([r["cpu"][k] for r in runs]) for k in runs[0]["cpu"]}
    if all(r["busy"] for r in runs):
        s["busy_max"] = median([max(r["busy"]) for r in runs])
        s["busy_p99"] = median([pct(r["busy"], .99) for r in runs])
        s["busy_over_5"] = median([sum(b > 5 for b in r["busy"]) for r in runs])
    return s


def print_mode(s, tag, n, pinned):
    """tag is "" for the unpinned mode: report.py reads those lines as the
    headline figures, as before pinning existed."""
    label = lambda text: (text + tag).ljust(33 if tag else 26) + " "  # noqa: E731
    print("  %s%d of %d in %.2f s" % (label("completed"), s["ok"], n, s["elapsed"]))
    print("  %sp50 %.2f ms  p99 %.2f ms  (%d samples; p99 per run %s)"
          % (label("health during the load"), s["loaded_p50"], s["loaded_p99"], s["samples"],
             " ".join("%.2f" % v for v in s["loaded_p99s"])))
    print("  %sp50 %.2f ms  p99 %.2f ms" % (label("health when idle"), s["idle_p50"],
                                            s["idle_p99"]))
    print("  %s%.1fx" % (label("ratio loaded/idle p99"), s["loaded_p99"] / s["idle_p99"]))
    if "cpu_s" in s:
        print("  %s%.3f s on CPU (%.0f%% of one CPU), %.3f s waiting for a CPU; idle %.1f%%"
              % (label("daemon CPU in the load"), s["cpu_s"], 100 * s["cpu_s"] / s["elapsed"],
                 s["wait_s"], 100 * s["idle_cpu_share"]))
    c = s["cpu"]
    where = (", %.2f s of it on CPU %d" % (c["else_on_daemon_cpu"], ALL_CPUS[0])) if pinned else ""
    print("  %sdaemon %.2f s, fake LLM %.2f s, load generator %.2f s, probe %.2f s, everything "
          "else %.2f s%s" % (label("CPU used in the load"), c["daemon"], c["fake"], c["load"],
                              c["probe"], c["else"], where))
    if c["else"] > OTHERS_NOTE * s["elapsed"]:
        print("  note: other processes took %.2f s of CPU during this load: rerun on a quiet "
              "machine before trusting these figures" % c["else"])
    if "busy_max" in s:
        print("  %slongest %.2f ms  p99 %.2f ms  (%g over 5 ms)"
              % (label("loop iteration"), s["busy_max"], s["busy_p99"], s["busy_over_5"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("PROMPTD_BUILD", "build"))
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--per-connection", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="runs per mode; figures are medians")
    ap.add_argument("--pin", choices=("both", "on", "off"), default="both",
                    help="pinned: daemon alone on CPU 0, everything else on the other CPUs")
    ap.add_argument("--loop-trace", action="store_true",
                    help="record the daemon's loop iterations with perf")
    ap.add_argument("--probe-interval-ms", type=float, default=10.0)
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        return probe_main(args.probe, args.probe_interval_ms / 1000)
    os.environ["PROMPTD_BUILD"] = os.path.abspath(args.build)
    if args.loop_trace and not shutil.which("perf"):
        ap.error("--loop-trace needs perf")
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.pin]
    if len(ALL_CPUS) < 2 and True in modes:
        print("pinning needs 2 CPUs, this machine has %d: unpinned only" % len(ALL_CPUS))
        modes = [False]
    results = {}
    for pinned in modes:
        results[pinned] = [one_run(args, pinned) for _ in range(args.runs)]
    print("machine: %s, %d cores, %s %s" % (_cpu(), os.cpu_count(), platform.system(),
                                            platform.release()))
    prio = results[modes[0]][0]["probe"]
    print("%d concurrent improves, backend answering in %g s; fake LLM, load generator and "
          "health probe (%s priority) in processes of their own; medians of %d run(s):"
          % (args.requests, BACKEND_DELAY_S, prio, args.runs))
    for pinned in modes:
        if pinned:
            print("pinned: the daemon alone on CPU %d, the rest on CPU %s"
                  % (ALL_CPUS[0], ",".join(map(str, ALL_CPUS[1:]))))
        else:
            print("unpinned: the daemon shares the %d CPUs with the fake LLM and the load "
                  "generator" % len(ALL_CPUS))
        print_mode(summary(results[pinned]), " (pinned)" if pinned else "", args.requests, pinned)
    for message, count in ERRORS.items():
        print("  failed %d: %s" % (count, message))
    runs = [r for rs in results.values() for r in rs]
    idle_rss = median([r["rss_idle"] for r in runs])
    print("RSS: idle %.1f MB, peak under load %.1f MB"
          % (idle_rss / 1024, max(r["rss_peak"] for r in runs) / 1024))
    floor = rss_floor_kb(args.build)
    if floor:
        print("RSS floor: %.1f MB for a bare program linking and initialising the same libraries "
              "(tests/bench/rss_floor.c); promptd's own: %+.1f MB"
              % (floor / 1024, (idle_rss - floor) / 1024))
    return 0 if all(r["ok"] == args.requests for r in runs) else 1


ALL_CPUS = sorted(os.sched_getaffinity(0))


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown cpu"


if __name__ == "__main__":
    sys.exit(main())
