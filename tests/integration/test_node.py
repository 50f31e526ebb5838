"""The Node.js client library (client/node) and the Raycast extension
(client/raycast), run as part of the project's test command.

For each package: `npm ci` when node_modules is missing or older than the
lockfile, the build (tsc; `ray build -e dist`), the extension's lint
(Raycast's ESLint config and Prettier), then its `node --test` suites, the
library's against the real daemon (PROMPTD_BUILD, as tests/run.py sets it).
Every node test becomes one unittest here, named after its file and title,
so a failure shows up in `make test` as its own FAIL line with node's error.
Without node (>= 18, the Node.js that Debian 12 ships) and npm everything is
skipped, saying so.
"""
import hashlib
import json
import fcntl
import os
import re
import shutil
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, "client", "node")
RAYCAST_DIR = os.path.join(ROOT, "client", "raycast")
REPORTER = os.path.join(NODE_DIR, "test", "json-reporter.mjs")
BUILD = os.environ.get("PROMPTD_BUILD", os.path.join(ROOT, "build"))
STAMP = ".promptd-npm-stamp"


def run(cmd, cwd, timeout=300, env=None):
    """Runs cmd; returns (exit code, combined output). Never raises."""
    full_env = dict(os.environ, PROMPTD_BUILD=os.path.abspath(BUILD), NO_COLOR="1",
                    npm_config_fund="false", npm_config_audit="false",
                    npm_config_update_notifier="false")
    full_env.update(env or {})
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        return proc.returncode, proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        return -1, out + "\n(timed out after %ds)" % timeout
    except OSError as e:
        return -1, "cannot run %s: %s" % (cmd[0], e)


def tail(text, n=60):
    lines = [l for l in text.splitlines() if "Unknown user config" not in l]
    return "\n".join(lines[-n:])


def tools_problem():
    """Why node tests cannot run here, or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "node and npm are not installed (the Node.js client and Raycast extension need Node >= 18)"
    code, out = run([node, "--version"], ROOT, timeout=30)
    m = re.match(r"v(\d+)\.", out.strip())
    if code != 0 or not m:
        return "cannot tell node's version: %s" % out.strip()
    if int(m.group(1)) < 18:
        return "node %s is too old: the Node.js client needs Node >= 18" % out.strip()
    return None


def lock_digest(pkg_dir):
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        with open(os.path.join(pkg_dir, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def npm_ci(pkg_dir):
    """npm ci unless node_modules matches the lockfile already. (ok, detail)."""
    stamp = os.path.join(pkg_dir, "node_modules", STAMP)
    digest = lock_digest(pkg_dir)
    try:
        with open(stamp) as f:
            if f.read().strip() == digest:
                return True, "node_modules is up to date"
    except OSError:
        pass
    code, out = run(["npm", "ci", "--no-audit", "--no-fund"], pkg_dir, timeout=600)
    if code != 0:
        return False, "npm ci failed in %s:\n%s" % (pkg_dir, tail(out))
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return True, "npm ci done"


def bin_path(pkg_dir, name):
    return os.path.join(pkg_dir, "node_modules", ".bin", name)


def slug(text, limit=90):
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s[:limit] or "unnamed"


def make_case(class_name, method, outcome, detail):
    """A unittest that passes, fails with detail, or skips with detail as its reason."""
    def test(self):
        if outcome == "skip":
            self.skipTest(detail)
        if outcome == "fail":
            self.fail(detail)
    test.__doc__ = None
    cls = type(class_name, (unittest.TestCase,), {method: test, "maxDiff": None})
    return cls(method)


def node_test_cases(prefix, pkg_dir, files, env=None):
    """Runs node --test on files with the JSON reporter; one case per test."""
    cmd = ["node", "--test", "--test-reporter=%s" % REPORTER, "--test-reporter-destination=stdout"] + files
    code, out = run(cmd, pkg_dir, timeout=600, env=env)
    cases, seen_files, used, failures = [], set(), {}, 0
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        file = ev.get("file") or ""
        seen_files.add(os.path.basename(file))
        stem = os.path.basename(file).replace(".test.js", "").replace(".js", "")
        if ev["suite"]:
            # A suite stands for its tests only when they never ran (skipped
            # suite) or it failed on its own (a hook), not "N subtests failed".
            err = ev.get("error") or ""
            if ev["skip"] is not None:
                pass
            elif ev["status"] == "fail" and not re.search(r"subtests? failed", err):
                pass
            else:
                continue
        class_name = "%s_%s" % (prefix, slug(stem, 40))
        method = "test_" + slug(ev["name"])
        key = (class_name, method)
        used[key] = used.get(key, 0) + 1
        if used[key] > 1:
            method += "_%d" % used[key]
        if ev["skip"] is not None or ev["todo"] is not None:
            reason = ev["skip"] or ev["todo"] or "skipped"
            cases.append(make_case(class_name, method, "skip", reason))
        elif ev["status"] == "pass":
            cases.append(make_case(class_name, method, "pass", ""))
        else:
            failures += 1
            cases.append(make_case(class_name, method, "fail",
                                   "node test %r in %s failed:\n%s" % (ev["name"], file, ev.get("error"))))
    for f in files:
        if os.path.basename(f) not in seen_files:
            failures += 1
            cases.append(make_case("%s_%s" % (prefix, slug(os.path.basename(f), 40)), "test_file_ran", "fail",
                                   "no test results from %s (node exited %d):\n%s" % (f, code, tail(out))))
    if code != 0 and failures == 0:
        cases.append(make_case(prefix, "test_node_exit_status", "fail",
                               "node --test exited %d without a failing test:\n%s" % (code, tail(out))))
    return cases, code, out


def step_case(class_name, method, ok, detail):
    return make_case(class_name, method, "pass" if ok else "fail", detail)


def test_files(pkg_dir, sub):
    d = os.path.join(pkg_dir, sub)
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(sub, n) for n in os.listdir(d) if n.endswith(".test.js"))


def library_cases():
    cases = []
    ok, detail = npm_ci(NODE_DIR)
    cases.append(step_case("NodeClientSetup", "test_npm_ci", ok, detail))
    if not ok:
        return cases
    code, out = run([bin_path(NODE_DIR, "tsc"), "-p", "tsconfig.json"], NODE_DIR)
    cases.append(step_case("NodeClientSetup", "test_tsc_build", code == 0, "tsc failed:\n" + tail(out)))
    if code != 0:
        return cases
    files = test_files(NODE_DIR, "test")
    node_cases, code, out = node_test_cases("NodeClient", NODE_DIR, files)
    cases += node_cases
    return cases


def raycast_cases():
    cases = []
    ok, detail = npm_ci(RAYCAST_DIR)
    cases.append(step_case("RaycastSetup", "test_npm_ci", ok, detail))
    if not ok:
        return cases
    code, out = run([bin_path(RAYCAST_DIR, "ray"), "build", "-e", "dist", "-o", "dist", "--non-interactive"],
                    RAYCAST_DIR, env={"CI": "true"})
    built = code == 0 and "built extension successfully" in out
    cases.append(step_case("RaycastBuild", "test_ray_build_dist", built, "ray build -e dist failed:\n" + tail(out)))
    code, out = run([bin_path(RAYCAST_DIR, "eslint"), "--max-warnings", "0", "src", "test", "scripts"], RAYCAST_DIR)
    cases.append(step_case("RaycastLint", "test_eslint_raycast_config", code == 0, "eslint:\n" + tail(out)))
    code, out = run([bin_path(RAYCAST_DIR, "prettier"), "--check", "src", "test", "scripts"], RAYCAST_DIR)
    cases.append(step_case("RaycastLint", "test_prettier", code == 0, "prettier:\n" + tail(out)))
    code, out = run([bin_path(RAYCAST_DIR, "tsc"), "-p", "tsconfig.test.json"], RAYCAST_DIR)
    if code == 0:
        code, out = run(["node", "scripts/mark-esm.mjs", "build-test"], RAYCAST_DIR)
    cases.append(step_case("RaycastSetup", "test_tsc_tests", code == 0, "compiling the tests failed:\n" + tail(out)))
    if code != 0:
        return cases
    files = test_files(RAYCAST_DIR, os.path.join("build-test", "test"))
    node_cases, code, out = node_test_cases("Raycast", RAYCAST_DIR, files)
    cases += node_cases
    return cases


def load_tests(loader, standard_tests, pattern):
    # make check runs this module once per build, maybe at the same time:
    # npm ci and the builds share the package directories, so take turns.
    lock = open(os.path.join(os.path.dirname(NODE_DIR), ".node-tests.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        return build_suite()
    finally:
        lock.close()


def build_suite():
    suite = unittest.TestSuite()
    problem = tools_problem()
    if problem:
        suite.addTest(make_case("NodeClient", "test_node_client", "skip", problem))
        suite.addTest(make_case("Raycast", "test_raycast_extension", "skip", problem))
        return suite
    for name, produce in (("NodeClient", library_cases), ("Raycast", raycast_cases)):
        try:
            cases = produce()
        except Exception as e:  # a bug here must show as a failure, not a crash
            cases = [make_case(name, "test_harness", "fail", "test_node.py: %r" % (e,))]
        for c in cases:
            suite.addTest(c)
    return suite


if __name__ == "__main__":
    unittest.main()
