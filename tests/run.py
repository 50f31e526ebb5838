#!/usr/bin/env python3
"""Runs every promptd test and prints one closing line "N passed, N failed".

Unit tests are the C programs build/tests/test_*; each prints "PASS name" or
"FAIL name" per test. Integration tests are tests/integration/test_*.py
(unittest), run one module per process, in parallel, against the real
build/promptd. With PROMPTD_FUZZ_BUILD set, each libFuzzer binary there
runs over its corpus and for a few seconds more. Usage: tests/run.py [--build DIR]... [-j N] [PATTERN...]
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LINE = re.compile(r"^(PASS|FAIL|SKIP) (\S+)")


def count(output):
    tally = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for line in output.splitlines():
        m = LINE.match(line)
        if m:
            tally[m.group(1)] += 1
    return tally


def run_one(kind, path, build, timeout):
    env = dict(os.environ, PROMPTD_BUILD=os.path.abspath(build), PYTHONDONTWRITEBYTECODE="1")
    if kind == "unit":
        cmd = [path]
    elif kind == "fuzz":
        cmd = [sys.executable, os.path.join(HERE, "fuzz", "run_fuzzer.py"), path]
    else:
        cmd = [sys.executable, os.path.join(HERE, "integration", "runmod.py"), path]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        out = proc.stdout.decode("utf-8", "replace")
        code = proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") + "\nFAIL %s: timed out after %ds\n" % (
            os.path.basename(path), timeout)
        code = -1
    tally = count(out)
    if code != 0 and tally["FAIL"] == 0:
        # A crash or a module that failed to import: count it, show why.
        out += "\nFAIL %s: exited with %d\n" % (os.path.basename(path), code)
        tally["FAIL"] += 1
    return path, build, out, tally, time.monotonic() - start


def find_jobs(build):
    jobs = []
    unit_dir = os.path.join(build, "tests")
    if os.path.isdir(unit_dir):
        for name in sorted(os.listdir(unit_dir)):
            if name.startswith("test_") and os.access(os.path.join(unit_dir, name), os.X_OK):
                jobs.append(("unit", os.path.join(unit_dir, name), build))
    integ = os.path.join(HERE, "integration")
    for name in sorted(os.listdir(integ)):
        if name.startswith("test_") and name.endswith(".py"):
            jobs.append(("integration", os.path.join(integ, name), build))
    return jobs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", help="build directory (repeat to run the suite once per build)")
    ap.add_argument("-j", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("patterns", nargs="*")
    args = ap.parse_args()

    jobs = []
    for build in args.build or ["build"]:
        jobs += find_jobs(build)
    fuzz_build = os.environ.get("PROMPTD_FUZZ_BUILD")
    if fuzz_build and os.path.isdir(os.path.join(fuzz_build, "fuzz")):
        fuzz_dir = os.path.join(fuzz_build, "fuzz")
        jobs += [("fuzz", os.path.join(fuzz_dir, n), fuzz_build) for n in sorted(os.listdir(fuzz_dir))]
    if args.patterns:
        jobs = [j for j in jobs if any(p in j[1] for p in args.patterns)]

    total = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.j) as pool:
        futures = [pool.submit(run_one, kind, path, build, args.timeout)
                   for kind, path, build in jobs]
        for fut in concurrent.futures.as_completed(futures):
            path, build, out, tally, secs = fut.result()
            print("== %s [%s] (%.1fs)" % (os.path.relpath(path, ROOT), build, secs))
            sys.stdout.write(out if out.endswith("\n") or not out else out + "\n")
            sys.stdout.flush()
            for k in total:
                total[k] += tally[k]
    line = "%d passed, %d failed" % (total["PASS"], total["FAIL"])
    if total["SKIP"]:
        line += ", %d skipped" % total["SKIP"]
    print(line)
    return 1 if total["FAIL"] or total["PASS"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
