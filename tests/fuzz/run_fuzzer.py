#!/usr/bin/env python3
"""Runs one libFuzzer binary the way `make check` wants: once over its seed
corpus and regression inputs, then a short fresh run. Prints PASS/FAIL
lines for tests/run.py. Usage: run_fuzzer.py BINARY [SECONDS]"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(name, cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if proc.returncode == 0:
        print("PASS %s" % name)
        return True
    print("FAIL %s: exit %d" % (name, proc.returncode))
    for line in proc.stdout.decode("utf-8", "replace").splitlines()[-40:]:
        print("    " + line)
    return False


def main():
    binary = sys.argv[1]
    seconds = sys.argv[2] if len(sys.argv) > 2 else "3"
    name = os.path.basename(binary)
    corpus = os.path.join(HERE, "corpus", name)
    regressions = os.path.join(HERE, "regressions", name)
    ok = True
    inputs = [corpus] + ([regressions] if os.path.isdir(regressions) else [])
    ok &= run("%s.corpus" % name, [binary, "-runs=0"] + inputs)
    work = tempfile.mkdtemp(prefix="fuzz-")
    try:
        ok &= run("%s.short_run" % name,
                  [binary, "-max_total_time=" + seconds, "-artifact_prefix=" + work + "/",
                   work] + inputs)
        for f in os.listdir(work):
            if f.startswith(("crash-", "leak-", "timeout-", "oom-")):
                print("    found %s: copy it into tests/fuzz/regressions/%s/" % (f, name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
