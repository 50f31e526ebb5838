"""promptd as a background service (docs/service.md): socket activation and
readiness as systemd does them, `make install`/`uninstall`, the unit files,
the launchd plist, the man pages, `promptctl service` (against fake
systemctl/launchctl that really start the daemon), the advice promptctl
gives when nothing answers, and the socket-path length limit."""
import configparser
import json
import os
import plistlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, PROMPTCTL, PROMPTD, ROOT, SLOW, Client, Daemon,  # noqa: E402
                     base_env)

LABEL = "io.github.promptd.promptd"
PLIST_TEMPLATE = os.path.join(ROOT, "launchd", LABEL + ".plist.in")
SERVICE_UNIT = os.path.join(ROOT, "systemd", "promptd.service")
SOCKET_UNIT = os.path.join(ROOT, "systemd", "promptd.socket")
MAN_PAGES = {"promptd": os.path.join(ROOT, "docs", "promptd.8"),
             "promptctl": os.path.join(ROOT, "docs", "promptctl.1")}
SOCKET_PATH_LIMIT = 104  # LIMIT_SOCKET_PATH_BYTES, NUL included


def private_dir(test):
    d = tempfile.mkdtemp(prefix="pd-svc-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, True)
    return d


def run(cmd, env=None, timeout=60, cwd=None):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def wait_exit(proc, timeout=20):
    try:
        return proc.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("promptd did not stop within %ss" % timeout)


def pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def listening_socket(path):
    """What systemd does for promptd.socket: bind, chmod 0600, listen."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o600)
    s.listen(64)
    return s


class ActivatedDaemon(Daemon):
    """promptd started the way systemd starts promptd.service: the listening
    socket at fd 3, LISTEN_FDS=1 and LISTEN_PID set to promptd's own pid
    (by a shell that execs promptd, so its pid is $$)."""

    def __init__(self, sock, path, listen_pid=None, **kw):
        super().__init__(**kw)
        self.listener = sock
        self.socket = path
        self.listen_pid = listen_pid  # None: promptd's own pid

    def command(self):
        # --socket names another path: an activated daemon must not bind it.
        real, self.socket = self.socket, os.path.join(self.home, "unused.sock")
        try:
            return super().command()
        finally:
            self.socket = real

    def start(self, wait=True, timeout=15):
        self.log_file = open(self.log_path, "ab")
        fd = self.listener.fileno()
        pid = "$$" if self.listen_pid is None else str(self.listen_pid)
        script = 'export LISTEN_PID=%s LISTEN_FDS=1 LISTEN_FDNAMES=promptd.socket; exec "$@"' % pid
        cmd = ["sh", "-c", script, "sh"] + self.command()
        # The child puts the socket at fd 3 before exec (kept by pass_fds;
        # every other descriptor is closed after preexec_fn runs).
        self.proc = subprocess.Popen(cmd, env=self.env, pass_fds=(3,),
                                     preexec_fn=lambda: os.dup2(fd, 3),
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file)
        if wait:
            self.wait_ready(timeout)
        return self


class SocketActivation(unittest.TestCase):
    def setUp(self):
        self.dir = private_dir(self)
        os.mkdir(os.path.join(self.dir, "promptd"), 0o700)
        self.path = os.path.join(self.dir, "promptd", "promptd.sock")
        self.sock = listening_socket(self.path)
        self.addCleanup(self.sock.close)

    def test_serves_on_the_inherited_socket_and_leaves_it_in_place(self):
        d = ActivatedDaemon(self.sock, self.path, env={"LLM_PROVIDER": "builtin"})
        with d:
            c = d.client()
            self.assertEqual(c.result("ping"), "pong")
            self.assertEqual(c.result("health")["socket"], self.path)
            c.close()
            self.assertIn("socket from systemd", d.log())
            self.assertFalse(os.path.exists(os.path.join(d.home, "unused.sock")))
            self.assertEqual(d.stop(), 0)
        st = os.lstat(self.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode), "promptd removed a socket it does not own")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertFalse(os.path.exists(self.path + ".lock"))
        # The socket is still systemd's (here: ours) and still listening.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(self.path)
        probe.close()

    def test_a_restarted_daemon_serves_on_the_same_socket(self):
        for _ in range(2):  # Restart=on-failure hands over the same socket
            with ActivatedDaemon(self.sock, self.path) as d:
                self.assertEqual(d.call("ping")["result"], "pong")
        self.assertTrue(os.path.exists(self.path))

    def test_a_request_queued_before_the_daemon_starts_is_answered(self):
        early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        early.settimeout(15 * SLOW)
        early.connect(self.path)  # accepted by the kernel, as under systemd
        early.sendall(b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n')
        with ActivatedDaemon(self.sock, self.path) as d:
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = early.recv(4096)
                self.assertTrue(chunk, "connection closed:\n" + d.log())
                reply += chunk
            self.assertEqual(json.loads(reply)["result"], "pong")
        early.close()

    def test_listen_pid_of_another_process_is_ignored(self):
        d = ActivatedDaemon(self.sock, self.path, listen_pid=1)
        d.socket = os.path.join(d.home, "unused.sock")
        with d:
            self.assertEqual(d.call("health")["result"]["socket"], d.socket)
            self.assertNotIn("socket from systemd", d.log())

    def test_a_socket_that_is_not_a_listening_stream_is_a_clear_error(self):
        dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dgram.bind(os.path.join(self.dir, "dgram.sock"))
        unlistened = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unlistened.bind(os.path.join(self.dir, "stream.sock"))
        for sock, words in ((dgram, "not a Unix stream socket"), (unlistened, "not listening")):
            d = ActivatedDaemon(sock, sock.getsockname())
            try:
                d.start(wait=False)
                self.assertEqual(wait_exit(d.proc), 1, d.log())
                self.assertIn(words, d.log())
                d.log_file.close()
                d.proc = None
            finally:
                d.cleanup()
            sock.close()


class Readiness(unittest.TestCase):
    """NOTIFY_SOCKET: what promptd tells a Type=notify service manager."""

    def setUp(self):
        self.dir = private_dir(self)
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(20 * SLOW)
        self.addCleanup(self.notify.close)

    def recv(self):
        fields = {}
        for line in self.notify.recv(4096).decode().split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        return fields

    def check_cycle(self, d):
        self.addCleanup(d.cleanup)
        d.start(wait=False)
        msg = self.recv()
        self.assertEqual(msg.get("READY"), "1", msg)
        self.assertIn(d.socket, msg.get("STATUS", ""))
        # Ready means serving: the first connection, with no retry, works.
        c = Client(d.socket, timeout=10)
        self.assertEqual(c.result("ping"), "pong")
        c.close()
        d.send_signal(signal.SIGTERM)
        msg = self.recv()
        self.assertEqual(msg.get("STOPPING"), "1", msg)
        self.assertEqual(wait_exit(d.proc), 0, d.log())
        d.stop()  # closes the log, checks it for sanitizer reports

    def test_ready_once_serving_and_stopping_on_sigterm(self):
        self.check_cycle(Daemon(env={"NOTIFY_SOCKET": self.notify_path}))

    def test_ready_under_socket_activation(self):
        os.mkdir(os.path.join(self.dir, "promptd"), 0o700)
        path = os.path.join(self.dir, "promptd", "promptd.sock")
        sock = listening_socket(path)
        self.addCleanup(sock.close)
        self.check_cycle(ActivatedDaemon(sock, path, env={"NOTIFY_SOCKET": self.notify_path}))
        self.assertTrue(os.path.exists(path))

    @unittest.skipUnless(sys.platform.startswith("linux"), "abstract sockets are Linux's")
    def test_abstract_notify_socket(self):
        name = "promptd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        abstract.bind("\0" + name)
        abstract.settimeout(20 * SLOW)
        self.notify.close()
        self.notify = abstract
        self.check_cycle(Daemon(env={"NOTIFY_SOCKET": "@" + name}))

    def test_reload_is_announced(self):
        d = Daemon(env={"NOTIFY_SOCKET": self.notify_path})
        self.addCleanup(d.cleanup)
        d.start(wait=False)
        self.assertEqual(self.recv().get("READY"), "1")
        d.send_signal(signal.SIGHUP)
        msg = self.recv()
        self.assertEqual(msg.get("RELOADING"), "1", msg)
        self.assertRegex(msg.get("MONOTONIC_USEC", ""), r"^[0-9]+$")
        self.assertEqual(self.recv().get("READY"), "1")
        self.assertEqual(d.call("ping")["result"], "pong")
        self.assertEqual(d.stop(), 0)


def unit_file(path):
    """A systemd unit as {section: {key: [values]}} (keys may repeat)."""
    sections, current = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                current = sections.setdefault(line.strip("[]"), {})
                continue
            k, v = line.split("=", 1)
            current.setdefault(k.strip(), []).append(v.strip())
    return sections


class UnitFiles(unittest.TestCase):
    def test_socket_unit(self):
        s = unit_file(SOCKET_UNIT)["Socket"]
        self.assertEqual(s["ListenStream"], ["%t/promptd/promptd.sock"])
        self.assertEqual(s["SocketMode"], ["0600"])
        self.assertEqual(s["DirectoryMode"], ["0700"])
        self.assertNotIn("Accept", s)  # one daemon for all connections

    def test_service_unit(self):
        u = unit_file(SERVICE_UNIT)
        s = u["Service"]
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["Restart"], ["on-failure"])
        self.assertEqual(s["ExecStart"], ["/usr/local/bin/promptd"])
        self.assertEqual(s["RestartPreventExitStatus"], ["2"])
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("PrivateTmp", "yes"), ("MemoryDenyWriteExecute", "yes"),
                           ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")):
            self.assertEqual(s.get(key), [value], key)
        self.assertIn("@system-service", s["SystemCallFilter"])
        self.assertIn("-%h/.local/share/promptd", s["ReadWritePaths"])
        self.assertIn("promptd.socket", u["Unit"]["Requires"])


class Install(unittest.TestCase):
    """`make install` and `make uninstall`, into a private DESTDIR."""

    def make(self, *args, env=None):
        # -o all: install what this test run's build holds, never rebuild it.
        p = run(["make", "-s", "-o", "all", "BUILD=" + BUILD] + list(args), env=env, cwd=ROOT,
                timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_install_and_uninstall_systemd_layout(self):
        dest = private_dir(self)
        self.make("install", "DESTDIR=" + dest, "PREFIX=/usr", "SERVICE=systemd")
        expect = {"usr/bin/promptd": 0o755, "usr/bin/promptctl": 0o755,
                  "usr/share/man/man8/promptd.8": 0o644,
                  "usr/share/man/man1/promptctl.1": 0o644,
                  "usr/lib/systemd/user/promptd.service": 0o644,
                  "usr/lib/systemd/user/promptd.socket": 0o644}
        for rel, mode in expect.items():
            st = os.stat(os.path.join(dest, rel))
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, rel)
        unit = unit_file(os.path.join(dest, "usr/lib/systemd/user/promptd.service"))
        self.assertEqual(unit["Service"]["ExecStart"], ["/usr/bin/promptd"])
        with open(SOCKET_UNIT) as a:
            with open(os.path.join(dest, "usr/lib/systemd/user/promptd.socket")) as b:
                self.assertEqual(a.read(), b.read())
        v = run([os.path.join(dest, "usr/bin/promptd"), "--version"])
        self.assertEqual(v.returncode, 0)
        self.make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr", "SERVICE=systemd")
        left = [os.path.relpath(os.path.join(r, f), dest)
                for r, _, fs in os.walk(dest) for f in fs]
        self.assertEqual(left, [])

    def test_install_and_uninstall_launchd_layout(self):
        dest = private_dir(self)
        home = "/Users/someone"
        env = dict(os.environ, HOME=home)
        args = ["DESTDIR=" + dest, "PREFIX=/opt/pd", "SERVICE=launchd", "HOME=" + home]
        self.make("install", *args, env=env)
        plist_path = os.path.join(dest, home.lstrip("/"), "Library/LaunchAgents",
                                  LABEL + ".plist")
        with open(plist_path, "rb") as f:
            raw = f.read()
        self.assertNotIn(b"@", raw)  # every placeholder filled in
        p = plistlib.loads(raw)
        self.assertEqual(p["Label"], LABEL)
        self.assertEqual(p["ProgramArguments"], ["/opt/pd/bin/promptd"])
        self.assertEqual(p["StandardErrorPath"], home + "/Library/Logs/promptd/promptd.log")
        self.assertTrue(p["EnvironmentVariables"]["PATH"].startswith("/opt/pd/bin:"))
        logs = os.path.join(dest, home.lstrip("/"), "Library/Logs/promptd")
        self.assertEqual(stat.S_IMODE(os.stat(logs).st_mode), 0o700)
        self.assertFalse(os.path.exists(os.path.join(dest, "opt/pd/lib/systemd")))
        self.make("uninstall", *args, env=env)
        self.assertFalse(os.path.exists(plist_path))
        self.assertFalse(os.path.exists(os.path.join(dest, "opt/pd/bin/promptd")))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_installed_units_pass_systemd_analyze_verify(self):
        prefix = private_dir(self)  # no DESTDIR: ExecStart must name a real file
        self.make("install", "PREFIX=" + prefix, "SERVICE=systemd")
        units = os.path.join(prefix, "lib/systemd/user")
        run_dir = os.path.join(prefix, "run")
        os.mkdir(run_dir, 0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=run_dir,
                   MANPATH=os.path.join(prefix, "share/man"))
        man = "--man=yes" if shutil.which("man") else "--man=no"
        p = run(["systemd-analyze", "--user", "verify", man,
                 os.path.join(units, "promptd.socket"), os.path.join(units, "promptd.service")],
                env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "", "systemd-analyze warns:\n" + p.stderr)


class LaunchdPlist(unittest.TestCase):
    def test_template_is_a_valid_plist(self):
        with open(PLIST_TEMPLATE, "rb") as f:
            p = plistlib.load(f)
        self.assertEqual(p["Label"], LABEL)
        self.assertEqual(p["ProgramArguments"], ["@PROMPTD@"])
        self.assertIs(p["RunAtLoad"], True)
        self.assertEqual(p["KeepAlive"], {"SuccessfulExit": False})
        for key in ("StandardOutPath", "StandardErrorPath"):
            self.assertTrue(p[key].startswith("@LOGDIR@/"), key)
        self.assertEqual(p["Umask"], 0o077)


def rendered(page):
    """The man page as plain text, without hyphenation or overstriking."""
    p = run(["groff", "-man", "-Tascii", "-P-cbou", page])
    assert p.returncode == 0, p.stderr
    return p.stdout


@unittest.skipUnless(shutil.which("groff"), "groff is not installed")
class ManPages(unittest.TestCase):
    def test_render_without_warnings(self):
        for page in MAN_PAGES.values():
            p = run(["groff", "-man", "-ww", "-z", page])
            self.assertEqual((p.returncode, p.stderr), (0, ""), page)

    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed")
    def test_mandoc_lint(self):
        for page in MAN_PAGES.values():
            p = run(["mandoc", "-T", "lint", "-W", "warning", page])
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), page)

    @unittest.skipUnless(shutil.which("man"), "man is not installed")
    def test_man_l_renders(self):
        for page in MAN_PAGES.values():
            p = run(["man", "-l", page], env=dict(os.environ, MANPAGER="cat", PAGER="cat",
                                                   MANWIDTH="80"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("EXIT STATUS", p.stdout)

    def test_promptd_page_covers_every_flag_key_signal_and_exit_code(self):
        text = rendered(MAN_PAGES["promptd"])
        helptext = run([PROMPTD, "--help"]).stdout
        flags = set(re.findall(r"(--[a-z][a-z-]*)", helptext))
        self.assertIn("--socket", flags)
        for flag in flags:
            self.assertTrue(flag in text, "docs/promptd.8 does not document " + flag)
        home = private_dir(self)
        cfg = run([PROMPTD, "--check-config"], env=base_env(home))
        self.assertEqual(cfg.returncode, 0, cfg.stderr)
        keys = [k for k in json.loads(cfg.stdout) if re.fullmatch(r"[A-Z][A-Z0-9_]*", k)]
        self.assertIn("LLM_PROVIDER", keys)
        for key in keys + ["DSPY_FEWSHOT_ENABLED", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET",
                           "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR"]:
            self.assertTrue(re.search(r"\b%s\b" % key, text),
                            "docs/promptd.8 does not document " + key)
        for sig in ("SIGTERM", "SIGINT", "SIGHUP"):
            self.assertTrue(sig in text, sig)
        status = text.split("EXIT STATUS", 1)[1].split("EXAMPLES", 1)[0]
        for code in ("0", "1", "2"):
            self.assertRegex(status, r"(?m)^\s+%s\s" % code)
        for path in ("promptd.sock", "promptd.conf", "prompt_history.db", "promptd.socket",
                     "promptd.service", LABEL + ".plist", "Library/Logs/promptd"):
            self.assertTrue(path in text, path)

    def test_promptctl_page_covers_every_command_and_option(self):
        text = rendered(MAN_PAGES["promptctl"])
        helptext = run([PROMPTCTL, "--help"]).stdout
        commands = re.findall(r"(?m)^  ([a-z][a-z.-]*) ", helptext)
        self.assertIn("service", commands)
        for opt in set(re.findall(r"(--[a-z][a-z-]*)", helptext.split("Options:")[1])):
            self.assertTrue(opt in text, "docs/promptctl.1 does not document " + opt)
        for cmd in commands:
            self.assertTrue(re.search(r"(?m)^ {7}%s\b" % re.escape(cmd), text),
                            "docs/promptctl.1 has no entry for the command " + cmd)
            usage = run([PROMPTCTL, cmd, "--help"]).stdout
            for opt in set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage)):
                self.assertTrue(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text),
                                "docs/promptctl.1 does not document %s %s" % (cmd, opt))
        for sub in ("install", "uninstall", "start", "stop", "status"):
            self.assertTrue(re.search(r"(?m)^ {7}service %s\b" % sub, text), sub)
        status = text.split("EXIT STATUS", 1)[1].split("EXAMPLES", 1)[0]
        for code in ("0", "1", "2", "3"):
            self.assertRegex(status, r"(?m)^\s+%s\s" % code)


class SocketPathLimit(unittest.TestCase):
    """A Unix socket path is at most 103 bytes (104 with its NUL): one byte
    below works, the limit itself is a clear error, for both programs."""

    def path_of(self, length):
        base = private_dir(self)
        name = "s.sock"
        pad = length - len(base) - len(name) - 2
        self.assertGreater(pad, 0)
        d = os.path.join(base, "d" * pad)
        os.makedirs(d, 0o700, exist_ok=True)
        path = os.path.join(d, name)
        self.assertEqual(len(path), length)
        return path

    def assert_too_long(self, p, program):
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("too long", p.stderr)
        self.assertIn(str(SOCKET_PATH_LIMIT), p.stderr)
        self.assertIn(program + ":", p.stderr)
        self.assertNotIn("AddressSanitizer", p.stderr)

    def test_promptd_serves_on_a_path_one_byte_under_the_limit(self):
        path = self.path_of(SOCKET_PATH_LIMIT - 1)
        with Daemon(socket_path=path) as d:
            self.assertEqual(d.call("ping")["result"], "pong")
            p = run([PROMPTCTL, "--socket", path, "ping"], env=d.env)
            self.assertEqual((p.returncode, p.stdout.strip()), (0, "pong"), p.stderr)

    def test_promptd_refuses_a_path_at_the_limit(self):
        path = self.path_of(SOCKET_PATH_LIMIT)
        env = base_env(private_dir(self))
        self.assert_too_long(run([PROMPTD, "--socket", path], env=env, timeout=20), "promptd")
        self.assert_too_long(run([PROMPTD], env=dict(env, PROMPTD_SOCKET=path), timeout=20),
                             "promptd")
        self.assertFalse(os.path.exists(path))

    def test_promptd_refuses_a_default_path_too_long(self):
        env = base_env(private_dir(self))
        env["XDG_RUNTIME_DIR"] = "/tmp/" + "r" * 100
        p = run([PROMPTD], env=env, timeout=20)
        self.assert_too_long(p, "promptd")
        self.assertIn("--socket", p.stderr)  # says how to choose another

    def test_promptctl_refuses_a_path_at_the_limit(self):
        path = self.path_of(SOCKET_PATH_LIMIT)
        env = base_env(private_dir(self))
        self.assert_too_long(run([PROMPTCTL, "--socket", path, "ping"], env=env), "promptctl")
        self.assert_too_long(run([PROMPTCTL, "ping"], env=dict(env, PROMPTD_SOCKET=path)),
                             "promptctl")
        env["XDG_RUNTIME_DIR"] = "/tmp/" + "r" * 100
        self.assert_too_long(run([PROMPTCTL, "service", "status"], env=env), "promptctl")


# Fake service managers: they log every call, and start and stop the real
# promptd on the default socket the way systemd or launchd would (a started
# socket unit starts the daemon at once, as the first client would).
FAKE_COMMON = r'''#!/bin/sh
F="$FAKE_DIR"
echo "$(basename "$0") $*" >> "$F/calls.log"
[ -n "$FAKE_FAIL" ] && { echo "Failed to connect to bus: No medium found" >&2; exit 1; }
running() {
    [ -f "$F/daemon.pid" ] || return 1
    pid=$(cat "$F/daemon.pid")
    kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
spawn() { running || { "$FAKE_PROMPTD" >>"$F/daemon.log" 2>&1 & echo $! > "$F/daemon.pid"; }; }
halt() {
    if running; then
        kill -TERM "$pid"
        i=0
        while [ $i -lt 400 ] && running; do sleep 0.05; i=$((i + 1)); done
    fi
    rm -f "$F/daemon.pid"
}
'''
FAKE_SYSTEMCTL = FAKE_COMMON + r'''
[ "$1" = --user ] || { echo "fake systemctl: --user expected" >&2; exit 2; }
shift
verb=$1; shift
now=; [ "$1" = --now ] && { now=1; shift; }
case $verb in
daemon-reload) ;;
enable) touch "$F/enabled"; if [ -n "$now" ]; then touch "$F/socket-active"; spawn; fi ;;
disable) rm -f "$F/enabled"; if [ -n "$now" ]; then rm -f "$F/socket-active"; halt; fi ;;
start) touch "$F/socket-active"; spawn ;;
stop) rm -f "$F/socket-active"; halt ;;
is-enabled) [ -f "$F/enabled" ] && { echo enabled; exit 0; }; echo disabled; exit 1 ;;
is-active)
    case $1 in
    promptd.socket) [ -f "$F/socket-active" ] && { echo active; exit 0; } ;;
    promptd.service) running && { echo active; exit 0; }
        [ -f "$F/service-failed" ] && { echo failed; exit 3; } ;;
    esac
    echo inactive; exit 3 ;;
*) echo "fake systemctl: $verb?" >&2; exit 2 ;;
esac
'''
FAKE_LAUNCHCTL = FAKE_COMMON + r'''
case $1 in
print) [ -f "$F/loaded" ] || { echo "Could not find service" >&2; exit 113; }
    printf '%s = {\n\tactive count = 1\n' "$2"
    running && printf '\tstate = running\n\tpid = %s\n' "$(cat "$F/daemon.pid")"
    printf '}\n' ;;
enable) ;;
bootstrap) [ -f "$F/loaded" ] && { echo "Bootstrap failed: 5" >&2; exit 5; }
    grep -q RunAtLoad "$3" || exit 9; touch "$F/loaded"; spawn ;;
kickstart) spawn ;;
bootout) [ -f "$F/loaded" ] || exit 3; rm -f "$F/loaded"; halt ;;
*) echo "fake launchctl: $1?" >&2; exit 2 ;;
esac
'''


class PromptctlService(unittest.TestCase):
    manager = "systemd"

    def setUp(self):
        self.home = private_dir(self)
        self.fake = os.path.join(self.home, "fake")
        os.makedirs(os.path.join(self.fake, "bin"))
        for name, text in (("systemctl", FAKE_SYSTEMCTL), ("launchctl", FAKE_LAUNCHCTL)):
            path = os.path.join(self.fake, "bin", name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.env = base_env(self.home)
        self.env.update(PATH=os.path.join(self.fake, "bin") + ":" + self.env["PATH"],
                        FAKE_DIR=self.fake, FAKE_PROMPTD=PROMPTD,
                        PROMPTCTL_SERVICE_MANAGER=self.manager, LLM_PROVIDER="builtin")
        self.socket = os.path.join(self.env["XDG_RUNTIME_DIR"], "promptd", "promptd.sock")
        self.unit_dir = os.path.join(self.env["XDG_CONFIG_HOME"], "systemd", "user")
        self.plist = os.path.join(self.home, "Library", "LaunchAgents", LABEL + ".plist")
        self.addCleanup(self.stop_fake_daemon)

    def stop_fake_daemon(self):
        pidfile = os.path.join(self.fake, "daemon.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                pid = int(f.read())
            if pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        log = os.path.join(self.fake, "daemon.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                text = f.read()
            for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                self.assertNotIn(mark, text)

    def ctl(self, *args, env=None):
        p = run([PROMPTCTL] + list(args), env=env or self.env)
        self.assertNotIn("Sanitizer", p.stderr)
        return p

    def calls(self):
        try:
            with open(os.path.join(self.fake, "calls.log")) as f:
                return [line.strip() for line in f
                        if " is-" not in line and " print " not in line]
        except OSError:
            return []

    def installed_elsewhere(self):
        dirs = ["/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user",
                "/lib/systemd/user", "/usr/share/systemd/user", "/usr/local/share/systemd/user"]
        return any(os.path.exists(os.path.join(d, "promptd.socket")) for d in dirs)


class SystemdService(PromptctlService):
    def test_install_writes_units_enables_and_waits_for_the_daemon(self):
        p = self.ctl("service", "install")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        service = os.path.join(self.unit_dir, "promptd.service")
        sock = os.path.join(self.unit_dir, "promptd.socket")
        for path in (service, sock):
            self.assertIn("wrote " + path, p.stdout)
        self.assertEqual(unit_file(service)["Service"]["ExecStart"], [os.path.realpath(PROMPTD)])
        with open(SOCKET_UNIT) as a, open(sock) as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(self.calls(), ["systemctl --user daemon-reload",
                                        "systemctl --user enable --now promptd.socket"])
        self.assertIn("running: systemctl --user enable --now promptd.socket", p.stdout)

    def test_install_start_status_stop_uninstall(self):
        p = self.ctl("service", "install", "--no-start")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[-1], "systemctl --user enable promptd.socket")
        p = self.ctl("service", "status")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("not running", p.stdout)

        p = self.ctl("service", "start")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("systemctl --user start promptd.socket promptd.service", self.calls())
        self.assertRegex(p.stdout, r"promptd \S+ answers on " + re.escape(self.socket))
        self.assertEqual(self.ctl("ping").stdout.strip(), "pong")

        p = self.ctl("--json", "service", "status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        st = json.loads(p.stdout)
        self.assertEqual((st["manager"], st["installed"], st["running"]), ("systemd", True, True))
        self.assertEqual(st["socket"], self.socket)
        self.assertEqual(st["service_unit"]["active"], "active")
        self.assertEqual(st["socket_unit"], {"enabled": "enabled", "active": "active"})

        p = self.ctl("service", "start")  # already there: nothing to do
        self.assertIn("already answers", p.stdout)

        p = self.ctl("service", "stop")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[-1], "systemctl --user stop promptd.socket promptd.service")
        self.assertEqual(self.ctl("ping").returncode, 3)

        p = self.ctl("service", "uninstall")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[-2:], [
            "systemctl --user disable --now promptd.socket promptd.service",
            "systemctl --user daemon-reload"])
        self.assertEqual(os.listdir(self.unit_dir), [])
        self.assertIn("removed " + os.path.join(self.unit_dir, "promptd.service"), p.stdout)

    def test_status_of_a_socket_waiting_for_its_first_client(self):
        self.ctl("service", "install", "--no-start")
        open(os.path.join(self.fake, "socket-active"), "w").close()
        p = self.ctl("service", "status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("starts it on the first request", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.fake, "daemon.pid")))

    def test_status_of_a_failed_service_points_at_its_log(self):
        self.ctl("service", "install", "--no-start")
        for flag in ("socket-active", "service-failed"):
            open(os.path.join(self.fake, flag), "w").close()
        p = self.ctl("service", "status")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("promptd.service failed", p.stdout)
        self.assertIn("journalctl --user -u promptd", p.stdout)

    def test_dry_run_changes_nothing(self):
        for action in ("install", "stop", "uninstall"):
            p = self.ctl("service", action, "--dry-run")
            self.assertIn("would ", p.stdout + p.stderr, action)
        self.assertEqual(self.calls(), [])
        self.assertFalse(os.path.exists(self.unit_dir))
        p = self.ctl("service", "install", "--dry-run")
        self.assertIn("would write " + os.path.join(self.unit_dir, "promptd.service"), p.stdout)
        self.assertIn("would run: systemctl --user enable --now promptd.socket", p.stdout)

    def test_a_failing_systemctl_is_reported_with_what_to_do(self):
        env = dict(self.env, FAKE_FAIL="1")
        p = self.ctl("service", "install", env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("systemctl exited with status 1", p.stderr)
        self.assertIn("Failed to connect to bus", p.stderr)
        self.assertIn("machinectl shell", p.stderr)

    def test_start_without_units(self):
        if self.installed_elsewhere():
            self.skipTest("promptd's units are installed on this machine")
        p = self.ctl("service", "start")
        self.assertEqual(p.returncode, 1)
        self.assertIn("promptctl service install", p.stderr)
        self.assertEqual(self.calls(), [])

    def test_promptd_option_names_the_daemon(self):
        copy = os.path.join(self.home, "bin with space", "promptd")
        os.makedirs(os.path.dirname(copy))
        shutil.copy(PROMPTD, copy)
        p = self.ctl("service", "install", "--no-start", "--promptd", copy)
        self.assertEqual(p.returncode, 0, p.stderr)
        unit = unit_file(os.path.join(self.unit_dir, "promptd.service"))
        self.assertEqual(unit["Service"]["ExecStart"], ['"%s"' % copy])
        p = self.ctl("service", "install", "--promptd", os.path.join(self.home, "nope"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an executable file", p.stderr)

    def test_usage_errors(self):
        for args in (["service"], ["service", "restart"], ["service", "start", "--bogus"]):
            p = self.ctl(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage: promptctl service", p.stderr)


class LaunchdService(PromptctlService):
    manager = "launchd"

    def test_install_start_status_stop_uninstall(self):
        p = self.ctl("service", "install", "--no-start")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("wrote " + self.plist, p.stdout)
        with open(self.plist, "rb") as f:
            plist = plistlib.load(f)
        logs = os.path.join(self.home, "Library", "Logs", "promptd")
        self.assertEqual(plist["ProgramArguments"], [os.path.realpath(PROMPTD)])
        self.assertEqual(plist["StandardOutPath"], os.path.join(logs, "promptd.log"))
        self.assertEqual(stat.S_IMODE(os.stat(logs).st_mode), 0o700)
        uid = os.getuid()
        enable = "launchctl enable gui/%d/%s" % (uid, LABEL)
        bootout = "launchctl bootout gui/%d/%s" % (uid, LABEL)
        self.assertEqual(self.calls(), [enable])

        p = self.ctl("service", "start")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[1:], [enable,
                                            "launchctl bootstrap gui/%d %s" % (uid, self.plist)])
        p = self.ctl("--json", "service", "status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        st = json.loads(p.stdout)
        self.assertEqual((st["manager"], st["installed"], st["loaded"], st["running"]),
                         ("launchd", True, True, True))
        self.assertIsInstance(st["pid"], int)
        p = self.ctl("service", "status")
        self.assertIn("running as pid %d" % st["pid"], p.stdout)

        p = self.ctl("service", "stop")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[-1], bootout)
        self.assertEqual(self.ctl("ping").returncode, 3)

        p = self.ctl("service", "install")  # not loaded now: bootstrap, wait
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"answers on " + re.escape(self.socket))
        p = self.ctl("service", "install", "--no-start")  # loaded: boot the old one out
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.calls()[-2:], [bootout, enable])

        p = self.ctl("service", "uninstall")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(self.plist))
        self.assertTrue(os.path.isdir(logs))
        self.assertIn("kept the logs in " + logs, p.stdout)


class NoServiceManager(PromptctlService):
    manager = "none"

    def test_service_commands_say_there_is_no_manager(self):
        for action in ("install", "start", "stop", "uninstall"):
            p = self.ctl("service", action)
            self.assertEqual(p.returncode, 1, action)
            self.assertIn("systemd is not running here", p.stderr)
            self.assertIn("promptd >>", p.stderr)
        self.assertEqual(self.calls(), [])
        p = self.ctl("service", "status")
        self.assertEqual(p.returncode, 3)
        self.assertIn("manager   none", p.stdout)


class NotRunningAdvice(PromptctlService):
    """What promptctl says when nothing answers: exactly how to start it."""

    def advice(self, manager, *extra):
        p = self.ctl(*(list(extra) + ["ping"]),
                     env=dict(self.env, PROMPTCTL_SERVICE_MANAGER=manager))
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("promptd is not running", p.stderr)
        return p.stderr

    def test_systemd_units_installed(self):
        os.makedirs(self.unit_dir)
        open(os.path.join(self.unit_dir, "promptd.socket"), "w").close()
        text = self.advice("systemd")
        self.assertIn("systemctl --user start promptd.socket", text)
        self.assertIn("journalctl --user -u promptd", text)

    def test_systemd_units_not_installed(self):
        if self.installed_elsewhere():
            self.skipTest("promptd's units are installed on this machine")
        self.assertIn("promptctl service install", self.advice("systemd"))

    def test_launchd_agent(self):
        self.assertIn("promptctl service install", self.advice("launchd"))
        os.makedirs(os.path.dirname(self.plist))
        open(self.plist, "w").close()
        self.assertIn("launchctl bootstrap gui/%d %s" % (os.getuid(), self.plist),
                      self.advice("launchd"))
        open(os.path.join(self.fake, "loaded"), "w").close()
        self.assertIn("launchctl kickstart gui/%d/%s" % (os.getuid(), LABEL),
                      self.advice("launchd"))

    def test_no_service_manager(self):
        self.assertIn("promptd >>", self.advice("none"))

    def test_a_socket_the_service_does_not_use(self):
        other = os.path.join(self.home, "my dir", "p.sock")
        text = self.advice("systemd", "--socket", other)
        self.assertIn("promptd --socket '%s' &" % other, text)


if __name__ == "__main__":
    unittest.main()
