"""promptctl's messages to a new user (issue 12, item 7): an empty history
says so on a terminal and stays silent for scripts; the start hints name a
promptd that exists (build/promptd before `make install`)."""
import json
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, PROMPTCTL, PROMPTD, Daemon, base_env, promptctl

NO_HISTORY = "no history yet: improve something with `promptctl improve IDEA`"


def run_with_terminal(args, env, stdout_tty=True, stderr_tty=True, cwd=None, timeout=30):
    """Runs promptctl with stdout and/or stderr on a pseudo-terminal (the
    others on pipes); returns (exit code, stdout text, stderr text)."""
    master, slave = pty.openpty()
    out = slave if stdout_tty else subprocess.PIPE
    err = slave if stderr_tty else subprocess.PIPE
    p = subprocess.Popen([PROMPTCTL] + list(args), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=out, stderr=err)
    os.close(slave)
    on_tty = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            on_tty += chunk
        elif p.poll() is not None:
            break
    piped_out = p.stdout.read() if p.stdout else b""
    piped_err = p.stderr.read() if p.stderr else b""
    p.wait(timeout)
    os.close(master)
    tty_text = on_tty.replace(b"\r\n", b"\n").decode()
    return (p.returncode, tty_text if stdout_tty else piped_out.decode(),
            tty_text if stderr_tty and not stdout_tty else piped_err.decode())


class EmptyHistory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(env={"LLM_PROVIDER": "builtin"})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.d.stop() == 0
        finally:
            cls.d.cleanup()

    def args(self, *a):
        return ["--socket", self.d.socket] + list(a)

    def test_a_terminal_is_told_how_to_start(self):
        rc, out, _ = run_with_terminal(self.args("history"), self.d.env)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.strip(), NO_HISTORY)

    def test_filters_that_match_nothing_say_so(self):
        rc, out, _ = run_with_terminal(self.args("history", "--provider", "openai"), self.d.env)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.strip(), "no entries match these filters")

    def test_a_pipe_gets_nothing(self):
        r = promptctl(self.args("history"), env=self.d.env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_a_pipe_watched_on_a_terminal_gets_the_sentence_on_stderr(self):
        # `promptctl history | wc -l` typed in a terminal: the pipe stays
        # empty, the person sees why.
        rc, out, err = run_with_terminal(self.args("history"), self.d.env, stdout_tty=False)
        self.assertEqual((rc, out), (0, ""))
        self.assertEqual(err.strip(), "promptctl: " + NO_HISTORY)

    def test_json_is_the_result_alone(self):
        rc, out, _ = run_with_terminal(self.args("history", "--json"), self.d.env)
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["items"], [])
        self.assertNotIn("no history", out)


class HistoryPastTheEnd(unittest.TestCase):
    def test_an_offset_past_the_rows_names_the_total(self):
        with Daemon(env={"LLM_PROVIDER": "builtin"}) as d:
            args = ["--socket", d.socket]
            r = promptctl(args + ["improve", "write a haiku about the sea"], env=d.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = promptctl(args + ["history"], env=d.env)
            self.assertEqual(len(r.stdout.splitlines()), 1, r.stdout)  # rows as before
            rc, out, _ = run_with_terminal(args + ["history", "--offset", "5"], d.env)
            self.assertEqual(rc, 0, out)
            self.assertEqual(out.strip(), "no entries past --offset 5 (1 in all)")
            r = promptctl(args + ["history", "--offset", "5"], env=d.env)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


def start_line(stderr):
    """The command a not-running hint tells the user to type."""
    m = re.search(r"Start it there yourself with:\n    (.*) --socket ", stderr)
    return m.group(1) if m else None


class StartHints(unittest.TestCase):
    """Nothing answers on a socket: the hint names the promptd to run."""

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="pd-hint-", dir="/tmp")
        self.env = base_env(self.home)
        self.sock = os.path.join(self.home, "nothing.sock")

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def ping(self, exe=PROMPTCTL, cwd=None, env=None, socket=True):
        args = [exe] + (["--socket", self.sock] if socket else []) + ["ping"]
        r = subprocess.run(args, env=env or self.env, cwd=cwd, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("promptd is not running", r.stderr)
        return r.stderr

    def lone_promptctl(self, with_promptd=False):
        """A copy of promptctl in a directory of its own (with a promptd
        link beside it when asked)."""
        bindir = os.path.join(self.home, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "promptctl")
        shutil.copy2(PROMPTCTL, exe)
        if with_promptd:
            os.symlink(PROMPTD, os.path.join(bindir, "promptd"))
        return bindir, exe

    def test_build_tree_names_build_promptd(self):
        # A new user in the source tree: build/promptd, nothing on PATH.
        text = self.ping(cwd=os.path.dirname(BUILD))
        cmd = start_line(text)
        self.assertEqual(cmd, os.path.join(os.path.basename(BUILD), "promptd"), text)
        self.assertTrue(os.access(os.path.join(os.path.dirname(BUILD), cmd), os.X_OK))

    def test_elsewhere_the_path_is_absolute(self):
        text = self.ping(cwd=self.home)
        self.assertEqual(start_line(text), os.path.realpath(PROMPTD), text)

    def test_installed_side_by_side_on_path_is_plain_promptd(self):
        bindir, exe = self.lone_promptctl(with_promptd=True)
        env = dict(self.env, PATH=bindir + ":/usr/bin:/bin")
        text = self.ping(exe=exe, cwd=self.home, env=env)
        self.assertEqual(start_line(text), "promptd", text)

    def test_only_on_path_is_plain_promptd(self):
        _, exe = self.lone_promptctl()
        other = os.path.join(self.home, "other")
        os.makedirs(other)
        os.symlink(PROMPTD, os.path.join(other, "promptd"))
        env = dict(self.env, PATH=other + ":/usr/bin:/bin")
        self.assertEqual(start_line(self.ping(exe=exe, cwd=self.home, env=env)), "promptd")

    def test_no_promptd_anywhere_says_how_to_build(self):
        if any(os.access(os.path.join(d, "promptd"), os.X_OK) for d in ("/usr/bin", "/bin")):
            self.skipTest("a promptd is installed in /usr/bin")
        _, exe = self.lone_promptctl()
        env = dict(self.env, PATH="/usr/bin:/bin")
        text = self.ping(exe=exe, cwd=self.home, env=env)
        self.assertIsNone(start_line(text), text)
        self.assertIn("build it\nwith `make`", text)
        self.assertIn("`make install`", text)

    def test_no_service_manager_names_the_path_too(self):
        env = dict(self.env, PROMPTCTL_SERVICE_MANAGER="none")
        text = self.ping(cwd=os.path.dirname(BUILD), env=env, socket=False)
        self.assertIn("    %s >>\"$HOME/.promptd.log\" 2>&1 &"
                      % os.path.join(os.path.basename(BUILD), "promptd"), text)

    def test_systemd_without_units_names_the_path(self):
        env = dict(self.env, PROMPTCTL_SERVICE_MANAGER="systemd")
        text = self.ping(cwd=os.path.dirname(BUILD), env=env, socket=False)
        if "systemctl --user start" in text:
            self.skipTest("promptd's units are installed on this machine")
        self.assertIn("or run it in this terminal: %s\n"
                      % os.path.join(os.path.basename(BUILD), "promptd"), text)


if __name__ == "__main__":
    unittest.main()
