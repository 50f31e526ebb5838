"""Test harness: starts the real build/promptd in a private directory and
talks to it over its Unix socket, as any client would.

    with Daemon(env={"LLM_PROVIDER": "builtin"}) as d:
        c = d.client()
        assert c.call("ping")["result"] == "pong"

Daemon.stop() fails the test when the daemon's log holds a sanitizer
report, so every integration test doubles as a memory-safety check under
`make test-asan`.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PROMPTD_BUILD", os.path.join(ROOT, "build"))
PROMPTD = os.path.join(BUILD, "promptd")
PROMPTCTL = os.path.join(BUILD, "promptctl")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")
# make test-valgrind: every daemon runs under memcheck; definite leaks and
# memory errors make it exit 99, which fails the test that stopped it.
VALGRIND = os.environ.get("PROMPTD_VALGRIND") == "1"


def _built_with(symbol):
    """Whether build/promptd holds symbol (a sanitizer's runtime entry)."""
    try:
        with open(PROMPTD, "rb") as f:
            return symbol in f.read()
    except OSError:
        return False


# make test-tsan: ThreadSanitizer runs the daemon 5-15 times slower.
THREAD_SANITIZED = _built_with(b"__tsan_init")
# An ASan build keeps freed memory in quarantine and a TSan build maps
# shadow memory: RSS says nothing there (LeakSanitizer, checked at every
# stop, finds leaks instead).
SANITIZED = _built_with(b"__asan_init") or THREAD_SANITIZED
# Start-up and answers are slower under valgrind and ThreadSanitizer.
SLOW = 10 if VALGRIND else 3 if THREAD_SANITIZED else 1
# RSS tells something only without a memory tool: ASan's quarantine and
# valgrind's own bookkeeping keep freed memory (both check leaks instead).
RSS_MEANINGFUL = not SANITIZED and not VALGRIND


def base_env(home):
    """A clean environment rooted in a private directory."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_RUNTIME_DIR": os.path.join(home, "run"),
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "XDG_DATA_HOME": os.path.join(home, "data"),
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
        "UBSAN_OPTIONS": "print_stacktrace=1",
        # make test-tsan: report every race (not only the first) into the
        # log, where stop() finds it, and exit 99 as ASan does.
        "TSAN_OPTIONS": "halt_on_error=0:exitcode=99:second_deadlock_stack=1",
    }
    for d in ("run", "config", "data"):
        os.makedirs(os.path.join(home, d), mode=0o700, exist_ok=True)
    return env


class Daemon:
    """One promptd process. env entries are added to a clean environment;
    config, when given, is written to a 0600 file passed with --config."""

    def __init__(self, env=None, config=None, args=(), home=None, socket_path=None):
        self.own_home = home is None
        self.home = home or tempfile.mkdtemp(prefix="pd-", dir="/tmp")
        self.env = base_env(self.home)
        self.env.update(env or {})
        self.socket = socket_path or os.path.join(self.home, "s", "promptd.sock")
        self.log_path = os.path.join(self.home, "promptd.log")
        self.args = list(args)
        self.proc = None
        if config is not None:
            self.config_path = os.path.join(self.home, "promptd.conf")
            with open(self.config_path, "w") as f:
                if isinstance(config, dict):
                    config = "".join("%s=%s\n" % kv for kv in config.items())
                f.write(config)
            os.chmod(self.config_path, 0o600)
            self.args += ["--config", self.config_path]

    def command(self):
        cmd = [PROMPTD, "--socket", self.socket] + self.args
        if VALGRIND:
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--track-fds=no"] + cmd
        return cmd

    def start(self, wait=True, timeout=15):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=self.log_file)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("promptd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                c = Client(self.socket, timeout=2)
                try:
                    if c.call("ping").get("result") == "pong":
                        return
                finally:
                    c.close()
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("promptd did not answer ping within %ss:\n%s" % (timeout, self.log()))

    def client(self, timeout=10):
        return Client(self.socket, timeout=timeout)

    def call(self, method, params=None, timeout=10):
        c = self.client(timeout)
        try:
            return c.call(method, params)
        finally:
            c.close()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon; returns its exit code. Fails on sanitizer output."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("promptd did not stop within %ss:\n%s" % (timeout, self.log()))
        code = self.proc.returncode
        self.log_file.close()
        self.proc = None
        self.check_sanitizers()
        return code

    def check_sanitizers(self):
        log = self.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                raise AssertionError("sanitizer report in promptd's log:\n" + log[-6000:])

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is not None:
                code = self.stop()
                if exc_type is None and code != 0:
                    raise AssertionError("promptd exited %s:\n%s" % (code, self.log()[-4000:]))
        finally:
            self.cleanup()


class Client:
    """A newline-delimited JSON-RPC client over the daemon's socket."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.pending = {}          # id -> response that arrived out of order
        self.notifications = []    # notifications seen, in order

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def request(self, method, params=None, id=None):
        """Sends a request; returns its id."""
        if id is None:
            id = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return id

    def recv_line(self):
        """One raw line (without the newline), or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self):
        """The next message, or None at EOF."""
        line = self.recv_line()
        return None if line is None else json.loads(line)

    def response(self, id):
        """Waits for the response with this id, keeping others for later."""
        if id in self.pending:
            return self.pending.pop(id)
        while True:
            msg = self.recv()
            if msg is None:
                raise ConnectionError("connection closed while waiting for id %r" % (id,))
            if "id" not in msg:
                self.notifications.append(msg)
                continue
            if msg["id"] == id:
                return msg
            self.pending[msg["id"]] = msg

    def call(self, method, params=None):
        return self.response(self.request(method, params))

    def result(self, method, params=None):
        """The result of a call that must succeed."""
        msg = self.call(method, params)
        if "error" in msg:
            raise AssertionError("%s failed: %s" % (method, msg["error"]))
        return msg["result"]


def promptctl(args, env=None, input=None, timeout=30):
    """Runs build/promptctl; returns CompletedProcess with text output."""
    return subprocess.run([PROMPTCTL] + list(args), env=env, input=input, capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, timeout=20, interval=0.05, what="condition"):
    """Polls predicate until it returns something true, and returns that;
    fails after timeout seconds (stretched under sanitizers and valgrind)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not met within %ss" % (what, timeout))
        time.sleep(interval)
