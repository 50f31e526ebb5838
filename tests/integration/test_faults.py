"""Fault injection through the real daemon, beyond what the improve,
history and churn tests already prove (issue 6, "Fault injection").

- Backend: a backend that flaps (refuses, then accepts, again and again)
  while many improves run; a backend restarted under a cached keep-alive
  connection; a keep-alive connection reset just as it is reused (curl's
  retry on a fresh connection must happen); every timeout fault ending within its deadline for every
  provider; a body that never ends and arrives fast (cut at
  LIMIT_UPSTREAM_RESPONSE_BYTES, memory bounded).
- Disk: the database directory made read-only mid-run (WAL and rollback
  journal), a full disk on a small tmpfs, another process holding an
  EXCLUSIVE lock for 10 s. Circuit breaker as docs/schema.md says, and an
  exact account: every id improve handed out is in the file or counted in
  health.database.dropped_writes.
- Process: kill -9 while ~10k rows per second are recorded, then restart;
  SIGTERM under the same load loses nothing.

A read-only directory takes chattr +i as root (mode bits do not stop
root), chmod 0500 otherwise; the tmpfs needs root; each skips with its
reason when it cannot be done. RSS is judged only without ASan or
valgrind, whose own heaps do not shrink (harness.RSS_MEANINGFUL). The slow tests say so in their docstring ("slow:");
the module takes 40-50 s. Figures are printed on lines starting with four
spaces."""
import json
import os
import random
import selectors
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import RSS_MEANINGFUL, SLOW, Daemon, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_llm import DEFAULT_RESULT, FakeLLM, FakeLLMProcess  # noqa: E402

IDEA = "email my landlord about the broken heater"
API_KEY = "k-test-faults"
KEY_NAMES = {"ollama": None, "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
             "gemini": "GEMINI_API_KEY"}
# Keep in step with include/promptd_limits.h and daemon/llm.c.
LIMIT_UPSTREAM_RESPONSE_BYTES = 8 * 1024 * 1024
LIMIT_STORE_QUEUE_ROWS = 65536
MAX_CONCURRENT = 8
UPSTREAM_CACHE = MAX_CONCURRENT + 4  # + LLM_SPARE_CONNECTIONS idle keep-alive connections
# How far past a deadline an answer may come and still be "within the
# deadline": scheduling on a loaded 2-core machine, never a performance bound.
SLACK_S = 5.0 * SLOW


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def rss_kb(pid):
    return proc_status(pid, "VmRSS")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def database(d):
    return d.call("health")["result"]["database"]


def settled(d, timeout=60):
    """health.database once the writer has no queued rows."""
    return wait_for(lambda: (lambda h: h if h["pending_writes"] == 0 else None)(database(d)),
                    timeout, what="an empty write queue")


def db_file(d):
    return os.path.join(d.home, "data", "promptd", "prompt_history.db")


def stored_ids(path):
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT id FROM prompt_history")}
    finally:
        con.close()


def integrity(path):
    """PRAGMA integrity_check plus FTS5's own check; returns the first."""
    con = sqlite3.connect(path)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.execute("INSERT INTO prompt_history_fts(prompt_history_fts) VALUES ('integrity-check')")
        return ok
    finally:
        con.close()


def builtin_daemon(**env):
    e = {"LLM_PROVIDER": "builtin", "LOG_LEVEL": "info"}
    e.update({k: str(v) for k, v in env.items()})
    return Daemon(env=e)


def is_root():
    return os.geteuid() == 0


def read_only_dir(path, on):
    """Makes a directory read-only (or writable again): chattr +i as root,
    whom mode bits do not stop; chmod 0500 otherwise."""
    if is_root():
        subprocess.run(["chattr", "+i" if on else "-i", path], check=True, capture_output=True)
    else:
        os.chmod(path, 0o500 if on else 0o700)


def can_make_dirs_read_only(home):
    """Whether read_only_dir works here (chattr needs a filesystem with
    attributes: not tmpfs on older kernels, not overlayfs)."""
    if is_root() and not shutil.which("chattr"):
        return False
    probe = os.path.join(home, "read-only-probe")
    os.makedirs(probe, exist_ok=True)
    try:
        read_only_dir(probe, True)
    except (OSError, subprocess.CalledProcessError):
        return False
    try:
        open(os.path.join(probe, "x"), "w").close()
        return False
    except OSError:
        return True
    finally:
        read_only_dir(probe, False)
        shutil.rmtree(probe, ignore_errors=True)


class Recorder:
    """Clients recording improvements (builtin provider, record: true) in
    windows of pipelined requests, until stopped or the daemon goes away.
    Keeps every answer: (time received, row id or None)."""

    def __init__(self, d, clients=1, window=20, pause=0.0, prefix="fault row"):
        self.d = d
        self.window = window
        self.pause = pause
        self.prefix = prefix
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.answers = []   # (monotonic time, id or None)
        self.errors = []    # unexpected error answers
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True)
                        for k in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def run(self, k):
        try:
            c = self.d.client(timeout=60)
        except OSError:
            return
        n = 0
        try:
            while not self.stop_ev.is_set():
                lines = []
                for _ in range(self.window):
                    n += 1
                    lines.append(json.dumps({
                        "jsonrpc": "2.0", "id": n, "method": "improve",
                        "params": {"idea": "%s %d from client %d" % (self.prefix, n, k)}}))
                c.send_raw(("\n".join(lines) + "\n").encode())
                for _ in range(self.window):
                    msg = c.recv()
                    if msg is None:
                        return
                    now = time.monotonic()
                    with self.lock:
                        if "result" in msg:
                            self.answers.append((now, msg["result"]["id"]))
                        else:
                            self.errors.append(msg)
                if self.pause:
                    time.sleep(self.pause)
        except (OSError, ValueError):
            return  # the daemon went away (kill -9, SIGTERM)
        finally:
            c.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60 * SLOW)

    def ids(self):
        with self.lock:
            return [i for _, i in self.answers if i is not None]

    def nulls(self):
        with self.lock:
            return sum(1 for _, i in self.answers if i is None)


def assert_accounted(test, d, ids, nulls, path):
    """Every id handed out is in the file or counted as dropped, and each
    null id was counted too: dropped_writes is exact. Returns the figures."""
    h = settled(d)
    present = stored_ids(path)
    missing = [i for i in ids if i not in present]
    test.assertEqual(len(missing) + nulls, h["dropped_writes"],
                     "dropped_writes %d, but %d handed-out ids are missing and %d answers had "
                     "id null" % (h["dropped_writes"], len(missing), nulls))
    return missing, h


# ---------------------------------------------------------------------------
# Backend: flapping
# ---------------------------------------------------------------------------

class FlappingProxy:
    """A TCP port that is alternately served (forwarded to a backend) and
    closed (connections refused), like a backend that keeps restarting.

    Going down closes the listener after accepting what is already in its
    backlog (those are served), and closes every forwarded connection
    between two requests: at once when idle, right after its response when
    one is being answered. So a restart never cuts an answer (every answer
    must be a result or "refused"), but takes the keep-alive connections
    curl caches with it. Responses are followed just enough to see where
    they end (Content-Length or the last chunk)."""

    def __init__(self, target_port, up_s=0.25, down_s=0.25):
        self.target = target_port
        self.up_s, self.down_s = up_s, down_s
        self.sel = selectors.DefaultSelector()
        self.listener = None
        self.up = True
        self.pairs = {}  # socket -> pair dict (both sockets map to the same dict)
        self.stop_ev = threading.Event()
        self.stats = {"accepted": 0, "closed_between_requests": 0, "down_phases": 0}
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.thread = threading.Thread(target=self.run, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.listen()
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)
        self.unlisten()
        for p in self.all_pairs():
            self.close_pair(p)

    def all_pairs(self):
        return list({id(p): p for p in self.pairs.values()}.values())

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", self.port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, None)
        self.listener = s

    def unlisten(self):
        if self.listener is None:
            return
        self.accept_all()  # the backlog is served, not reset
        self.sel.unregister(self.listener)
        self.listener.close()
        self.listener = None

    def accept_all(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                return
            self.stats["accepted"] += 1
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            for s in (c, u):
                s.setblocking(True)
                s.settimeout(5)
            # Busy from the start: its request is on its way (closing it now
            # would reset a fresh connection, which curl rightly does not retry).
            p = {"client": c, "upstream": u, "busy": True, "head": b"", "left": None}
            self.pairs[c] = self.pairs[u] = p
            self.sel.register(c, selectors.EVENT_READ, "client")
            self.sel.register(u, selectors.EVENT_READ, "upstream")

    def close_pair(self, p):
        for s in (p["client"], p["upstream"]):
            if s in self.pairs:
                del self.pairs[s]
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
            try:
                s.close()
            except OSError:
                pass

    @staticmethod
    def response_ended(p, data):
        """Follows the response; True once it is complete."""
        if p["left"] is None:
            p["head"] += data
            if b"\r\n\r\n" not in p["head"]:
                return False
            head, body = p["head"].split(b"\r\n\r\n", 1)
            p["chunked"] = b"chunked" in head.lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            p["left"], p["tail"] = length, b""
            data = body
        if p["chunked"]:
            p["tail"] = (p["tail"] + data)[-5:]
            return p["tail"] == b"0\r\n\r\n"
        p["left"] -= len(data)
        return p["left"] <= 0

    def run(self):
        switch = time.monotonic() + self.up_s
        while not self.stop_ev.is_set():
            for key, _ in self.sel.select(0.01):
                if key.data is None:
                    if self.listener is not None:
                        self.accept_all()
                    continue
                s = key.fileobj
                p = self.pairs.get(s)
                if p is None:
                    continue
                other = p["upstream"] if key.data == "client" else p["client"]
                try:
                    data = s.recv(65536)
                    if data:
                        other.sendall(data)
                except OSError:
                    data = b""
                if not data:
                    self.close_pair(p)
                    continue
                if key.data == "client" and not p["busy"]:
                    p.update(busy=True, head=b"", left=None)
                elif key.data == "upstream" and p["busy"] and self.response_ended(p, data):
                    p["busy"] = False
                    if not self.up:
                        self.stats["closed_between_requests"] += 1
                        self.close_pair(p)
            now = time.monotonic()
            if now >= switch:
                self.up = not self.up
                if self.up:
                    try:
                        self.listen()
                    except OSError:
                        self.up = False  # the port is busy for a moment: stay down
                else:
                    self.unlisten()
                    self.stats["down_phases"] += 1
                    for p in self.all_pairs():
                        if not p["busy"]:
                            self.stats["closed_between_requests"] += 1
                            self.close_pair(p)
                switch = now + (self.up_s if self.up else self.down_s) * random.uniform(0.6, 1.4)


class ResettingServer:
    """An Ollama /api/chat that answers each connection's first request
    (one NDJSON line, done: true, fine streamed or not) and resets the
    connection (SO_LINGER 0) when its second request arrives. The first
    fresh_resets connections are reset at their first request instead,
    like a backend that restarts between accepting a connection and
    reading it."""

    BODY = (json.dumps({"model": "llama3.2:3b", "created_at": "2026-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": json.dumps(DEFAULT_RESULT)},
                        "done": True, "done_reason": "stop"}) + "\n").encode()

    def __init__(self, fresh_resets=0):
        self.fresh_resets = fresh_resets
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = self.resets = 0
        self.lock = threading.Lock()

    def start(self):
        threading.Thread(target=self.accept, daemon=True).start()
        return self

    def stop(self):
        self.sock.close()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                reset_at = 1 if self.connections <= self.fresh_resets else 2
            threading.Thread(target=self.serve, args=(c, reset_at), daemon=True).start()

    @staticmethod
    def read_request(c, buf):
        """(request bytes, the rest), or (None, b"") at EOF."""
        while b"\r\n\r\n" not in buf:
            data = c.recv(65536)
            if not data:
                return None, b""
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            data = c.recv(65536)
            if not data:
                return None, b""
            rest += data
        return head, rest[length:]

    def serve(self, c, reset_at):
        buf, n = b"", 0
        c.settimeout(30)
        try:
            while True:
                head, buf = self.read_request(c, buf)
                if head is None:
                    break
                n += 1
                if n == reset_at:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with self.lock:
                        self.resets += 1
                    break
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(self.BODY), self.BODY))
        except OSError:
            pass
        finally:
            c.close()


class Flapping(unittest.TestCase):
    FB_MS = 3000
    DEADLINE_MS = 3000

    def test_a_flapping_backend_gets_a_result_or_refused_each_time(self):
        """Six clients improve in a loop for 5 s (slow: ~7 s) while the
        backend is up for ~0.25 s, down for ~0.25 s, and so on. Every answer
        is the result or -32000 with its sentence, within the deadline; ping
        answers throughout; afterwards nothing is in flight, no upstream fd
        is left beyond curl's cache, and RSS is back near its start."""
        upstream = FakeLLMProcess("ollama")
        proxy = None
        d = None
        try:
            upstream.configure(delay_s=0.03)
            proxy = FlappingProxy(upstream.port).start()
            d = Daemon(config={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": proxy.url,
                               "SQLITE_ENABLED": "false", "LOG_LEVEL": "error",
                               "LLM_FIRST_BYTE_TIMEOUT_MS": self.FB_MS,
                               "MAX_LATENCY_MS": self.DEADLINE_MS,
                               "MAX_CONCURRENT_REQUESTS": MAX_CONCURRENT}).start()
            pid = d.proc.pid
            c = d.client()
            for _ in range(20):  # warm up: curl, jansson, the first connections
                c.call("improve", {"idea": IDEA})
            c.close()
            time.sleep(0.3)
            fds0, rss0 = fd_count(pid), rss_kb(pid)

            outcomes, problems, lock = [], [], threading.Lock()
            stop = threading.Event()
            limit_s = (self.FB_MS + self.DEADLINE_MS) / 1000.0 + SLACK_S

            def improver(k):
                cl = d.client(timeout=60)
                n = 0
                try:
                    while not stop.is_set():
                        n += 1
                        stream = (n + k) % 3 == 0
                        t0 = time.monotonic()
                        rid = cl.request("improve", {"idea": "flapping idea %d/%d" % (k, n),
                                                     "stream": stream})
                        msg = cl.response(rid)
                        elapsed = time.monotonic() - t0
                        cl.notifications.clear()
                        if "result" in msg:
                            ok = msg["result"]["improved_prompt"] == DEFAULT_RESULT["improved_prompt"]
                            kind = "result"
                        else:
                            e = msg["error"]
                            ok = (e["code"] == -32000 and e["data"]["kind"] == "upstream_unavailable"
                                  and "ollama serve" in e["message"])
                            kind = "refused"
                        with lock:
                            outcomes.append((kind, elapsed))
                            if not ok or elapsed > limit_s:
                                problems.append((elapsed, msg))
                        if kind == "refused":
                            time.sleep(0.01)  # as a client would, before trying again
                finally:
                    cl.close()

            pings = []

            def pinger():
                p = d.client()
                try:
                    while not stop.is_set():
                        t0 = time.monotonic()
                        r = p.call("ping")
                        pings.append((time.monotonic() - t0, r.get("result")))
                        time.sleep(0.02)
                finally:
                    p.close()

            threads = [threading.Thread(target=improver, args=(k,)) for k in range(6)]
            threads.append(threading.Thread(target=pinger))
            for t in threads:
                t.start()
            time.sleep(5.0)
            stop.set()
            for t in threads:
                t.join(limit_s + 10)
            proxy.stop()
            h = wait_for(lambda: (lambda x: x if x["requests"]["in_flight"] == 0 else None)(
                d.call("health")["result"]), 10, what="no request in flight")
            time.sleep(0.3)
            fds1, rss1 = fd_count(pid), rss_kb(pid)
            results = sum(1 for k, _ in outcomes if k == "result")
            refused = len(outcomes) - results
            worst_ping = max(t for t, _ in pings)
            print("    flapping: %d improves, %d results, %d refused (slowest %.2f s); proxy: %d "
                  "down phases, %d connections accepted, %d closed between requests; ping worst %.0f ms "
                  "(%d pings); fds %d -> %d; RSS %d -> %d kB"
                  % (len(outcomes), results, refused, max(t for _, t in outcomes),
                     proxy.stats["down_phases"], proxy.stats["accepted"],
                     proxy.stats["closed_between_requests"], worst_ping * 1000, len(pings), fds0, fds1,
                     rss0, rss1))
            self.assertEqual(problems[:3], [], "answers that are neither a result nor refused, "
                             "or came after %.1f s" % limit_s)
            self.assertGreater(results, 20, "the backend was never really up")
            self.assertGreater(refused, 20, "the backend never really refused")
            self.assertTrue(all(r == "pong" for _, r in pings))
            self.assertLess(worst_ping, 2.0 * SLOW, "the loop stalled while the backend flapped")
            self.assertEqual(h["llm"]["in_flight"], 0)
            self.assertEqual(h["llm"]["queued"], 0)
            self.assertLessEqual(fds1, fds0 + UPSTREAM_CACHE, "fds leaked")
            if RSS_MEANINGFUL:  # valgrind's and ASan's own heaps do not shrink
                self.assertLess(rss1, rss0 + 16 * 1024, "RSS grew while the backend flapped")
            self.assertEqual(d.stop(), 0)
        finally:
            if d is not None:
                d.cleanup()
            if proxy is not None:
                proxy.stop_ev.set()
            upstream.stop()

    def test_a_keep_alive_connection_reset_as_it_is_reused_is_retried(self):
        """The keep-alive race: the server drops a connection (RST) just as
        curl sends the next request on it. Nothing of the answer came, so
        curl retries on a fresh connection and the improve is a result.
        Regression: a poll error was passed to curl as CURL_CSELECT_ERR
        alone, which fails the transfer at once ("select/poll returned
        error", -32002) and skips that retry."""
        srv = ResettingServer().start()
        try:
            with Daemon(config={"LLM_BASE_URL": srv.url, "SQLITE_ENABLED": "false",
                                "LOG_LEVEL": "error"}) as d:
                c = d.client(timeout=30)
                for n in range(6):
                    msg = c.call("improve", {"idea": IDEA, "stream": n % 2 == 1})
                    c.notifications.clear()
                    self.assertIn("result", msg, "improve %d: %s" % (n, msg))
                    self.assertEqual(msg["result"]["improved_prompt"],
                                     DEFAULT_RESULT["improved_prompt"])
                c.close()
            # Each connection answered once and was reset at its second request.
            self.assertEqual(srv.resets, 5)
            self.assertEqual(srv.connections, 6)
        finally:
            srv.stop()

    def test_a_new_connection_reset_before_any_answer_is_sent_again(self):
        """A backend restarting between accepting a connection and reading
        it resets a brand-new connection, which curl does not retry: the
        daemon sends the request once more on a new connection, and the
        improve is a result."""
        for stream in (False, True):
            srv = ResettingServer(fresh_resets=1).start()
            try:
                with Daemon(config={"LLM_BASE_URL": srv.url, "SQLITE_ENABLED": "false",
                                    "LOG_LEVEL": "error"}) as d:
                    msg = d.call("improve", {"idea": IDEA, "stream": stream})
                    self.assertIn("result", msg, msg)
                    self.assertEqual(msg["result"]["improved_prompt"],
                                     DEFAULT_RESULT["improved_prompt"])
                self.assertEqual((srv.connections, srv.resets), (2, 1))
            finally:
                srv.stop()

    def test_a_backend_that_resets_every_connection_is_tried_twice_only(self):
        srv = ResettingServer(fresh_resets=1000).start()
        try:
            with Daemon(config={"LLM_BASE_URL": srv.url, "SQLITE_ENABLED": "false",
                                "LOG_LEVEL": "error"}) as d:
                msg = d.call("improve", {"idea": IDEA})
                e = msg.get("error")
                self.assertIsNotNone(e, msg)
                self.assertEqual((e["code"], e["data"]["kind"]), (-32002, "upstream_error"), e)
                self.assertIn("broke before the answer was complete", e["message"])
            self.assertEqual((srv.connections, srv.resets), (2, 2))
        finally:
            srv.stop()

    def test_a_restarted_backend_under_a_cached_connection(self):
        """curl keeps the connection of the last answer. The backend stops
        (its connections close): the next improve is refused (-32000 at
        once), not a broken connection; the backend comes back on the same
        port: the next improve is a result on a new connection."""
        fake = FakeLLM("ollama").start()
        port = fake.port
        with Daemon(config={"LLM_BASE_URL": fake.url, "SQLITE_ENABLED": "false",
                            "LOG_LEVEL": "error"}) as d:
            c = d.client(timeout=30)
            try:
                for stream in (False, True):
                    self.assertIn("result", c.call("improve", {"idea": IDEA, "stream": stream}))
                    fake.stop()
                    time.sleep(0.1)  # the FIN reaches curl's idle connection
                    t0 = time.monotonic()
                    msg = c.call("improve", {"idea": IDEA, "stream": stream})
                    self.assertLess(time.monotonic() - t0, 2 * SLOW)
                    e = msg.get("error")
                    self.assertIsNotNone(e, msg)
                    self.assertEqual((e["code"], e["data"]["kind"]),
                                     (-32000, "upstream_unavailable"), e)
                    self.assertIn("ollama serve", e["message"])
                    fake = FakeLLM("ollama", port=port).start()
                    msg = c.call("improve", {"idea": IDEA, "stream": stream})
                    self.assertIn("result", msg, msg)
                    self.assertEqual(msg["result"]["improved_prompt"],
                                     DEFAULT_RESULT["improved_prompt"])
                    self.assertEqual(fake.stats()["accepted"], 1)
                    c.notifications.clear()
            finally:
                c.close()
                fake.stop()


# ---------------------------------------------------------------------------
# Backend: deadlines for every provider, and a fast endless body
# ---------------------------------------------------------------------------

class Deadlines(unittest.TestCase):
    FB_MS = 1500
    DEADLINE_MS = 600

    def provider_run(self, provider):
        """The timeout faults, one after the other, against one provider.
        Returns a list of (what, message) problems."""
        key_name = KEY_NAMES[provider]
        fake = FakeLLM(provider).start()
        base = {"LLM_PROVIDER": provider, "LLM_BASE_URL": fake.url, "SQLITE_ENABLED": "false",
                "LOG_LEVEL": "error"}
        if key_name:
            base[key_name] = API_KEY
        fast = Daemon(config=dict(base, LLM_FIRST_BYTE_TIMEOUT_MS=self.FB_MS,
                                  MAX_LATENCY_MS=self.DEADLINE_MS))
        roomy = Daemon(config=dict(base, LLM_FIRST_BYTE_TIMEOUT_MS=20000, MAX_LATENCY_MS=20000))
        problems = []
        fb, ml = self.FB_MS / 1000.0, self.DEADLINE_MS / 1000.0

        def configure(**kw):
            if key_name:
                kw["api_key"] = API_KEY
            fake.configure(**kw)

        def check(what, daemon, stream, code, words, low, high):
            c = daemon.client(timeout=60)
            try:
                t0 = time.monotonic()
                rid = c.request("improve", {"idea": IDEA, "stream": stream})
                msg = c.response(rid)
                elapsed = time.monotonic() - t0
            finally:
                c.close()
            e = msg.get("error") or {}
            if e.get("code") != code or words not in e.get("message", ""):
                problems.append((what, "expected %d with %r, got %r" % (code, words, msg)))
            elif not low <= elapsed < high:
                problems.append((what, "answered after %.2f s, expected %.2f..%.2f s"
                                 % (elapsed, low, high)))
            if daemon.call("ping").get("result") != "pong":
                problems.append((what, "no pong afterwards"))

        try:
            fast.start()
            roomy.start()
            # Headers that come after the first-byte wait: -32001 at that wait.
            configure(delay_s=fb + 1.0)
            check("slow headers", fast, False, -32001, "LLM_FIRST_BYTE_TIMEOUT_MS",
                  fb - 0.1, fb + SLACK_S)
            configure(fault="no_headers")
            check("no headers", fast, True, -32001, "LLM_FIRST_BYTE_TIMEOUT_MS",
                  fb - 0.1, fb + SLACK_S)
            # A body that never ends: the generation deadline after the first byte.
            configure(fault="never_ending")
            for stream in (False, True):
                check("never ending, stream=%s" % stream, fast, stream, -32001, "MAX_LATENCY_MS",
                      ml - 0.1, ml + SLACK_S)
            # One byte every 0.1 s of a plain (not streamed) answer.
            configure(fault="trickle")
            check("trickle, not streamed", fast, False, -32001, "MAX_LATENCY_MS",
                  ml - 0.1, ml + SLACK_S)
            # 10 MB in one JSON document (the improve tests stream it).
            configure(fault="huge")
            check("huge, not streamed", roomy, False, -32003, "exceeded", 0, 10 * SLOW)
        except Exception as e:  # a thread reports, the test asserts
            problems.append(("exception", repr(e)))
        finally:
            for daemon in (fast, roomy):
                try:
                    if daemon.proc is not None and daemon.stop() != 0:
                        problems.append(("exit", "promptd exited non-zero"))
                except AssertionError as e:
                    problems.append(("stop", str(e)[:2000]))
                daemon.cleanup()
            fake.stop()
        return problems

    def test_timeouts_end_within_their_deadline_for_every_provider(self):
        """Slow headers (after LLM_FIRST_BYTE_TIMEOUT_MS), no headers, a body
        that never ends (both modes), a trickle and a 10 MB answer (not
        streamed: the improve tests stream those), against each
        provider's wire format (the four run at once): the right code and
        sentence, never before the configured wait, at most SLACK_S after."""
        found = {}
        threads = [threading.Thread(target=lambda p=p: found.__setitem__(p, self.provider_run(p)))
                   for p in KEY_NAMES]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for provider in KEY_NAMES:
            with self.subTest(provider=provider):
                self.assertEqual(found.get(provider), [])


class EndlessHandler(BaseHTTPRequestHandler):
    """An Ollama or OpenAI endpoint whose answer never ends and comes as
    fast as the socket takes it: the start of the model's JSON, then
    "xxxx..." in 64 KiB pieces forever (NDJSON lines, SSE events, or one
    endless JSON document when not streamed)."""

    protocol_version = "HTTP/1.1"
    PIECE = "x" * 65536

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stream = body.get("stream", False)
        openai = self.path.startswith("/v1/")
        self.send_response(200)
        if stream and openai:
            self.send_header("Content-Type", "text/event-stream")
        elif stream:
            self.send_header("Content-Type", "application/x-ndjson")
        else:
            self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def frame(text):
            if not stream:
                return text.encode()
            if openai:
                return b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk",
                                               "choices": [{"index": 0, "delta": {"content": text},
                                                            "finish_reason": None}]}).encode() + b"\n\n"
            return json.dumps({"model": "m", "message": {"role": "assistant", "content": text},
                               "done": False}).encode() + b"\n"

        if stream:
            first = frame('{"improved_prompt": "')
        elif openai:
            first = b'{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":' \
                    b'{"role":"assistant","content":"{\\"improved_prompt\\": \\"'
        else:
            first = b'{"model":"m","message":{"role":"assistant","content":"{\\"improved_prompt' \
                    b'\\": \\"'
        piece = frame(self.PIECE)
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
            chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
            while True:
                self.wfile.write(chunk)
        except OSError:
            with self.server.lock:
                self.server.cut += 1
        self.close_connection = True


class EndlessBody(unittest.TestCase):
    def test_a_fast_endless_body_is_cut_at_the_limit_and_memory_stays_bounded(self):
        """Eight such answers at once, four rounds, for Ollama (NDJSON
        streamed, one JSON document not) and OpenAI (SSE, JSON): each is
        -32003 as soon as 8 MiB arrived, long before MAX_LATENCY_MS (30 s,
        stretched under valgrind, which may take longer than that to copy 64 MiB);
        the transfer is aborted; RSS peaks within a few times the limit per
        request (without the limit it would grow until the deadline) and
        does not grow round by round."""
        srv = ThreadingHTTPServer(("127.0.0.1", 0), EndlessHandler)
        srv.daemon_threads = True
        srv.lock, srv.cut = threading.Lock(), 0
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        sent = 0
        try:
            for provider in ("ollama", "openai"):
                with self.subTest(provider=provider):
                    sent += self.endless_rounds(provider, url)
            wait_for(lambda: srv.cut >= sent, 10, what="every endless transfer aborted")
        finally:
            srv.shutdown()
            srv.server_close()

    def endless_rounds(self, provider, url):
        d = Daemon(config={"LLM_PROVIDER": provider, "LLM_BASE_URL": url,
                           "OPENAI_API_KEY": API_KEY, "SQLITE_ENABLED": "false",
                           "LOG_LEVEL": "error", "MAX_LATENCY_MS": 30000 * SLOW,
                           "MAX_CONCURRENT_REQUESTS": MAX_CONCURRENT})
        try:
            d.start()
            pid = d.proc.pid
            rss0 = rss_kb(pid)
            rounds, sent = [], 0
            for _ in range(4):
                c = d.client(timeout=60 * SLOW)
                t0 = time.monotonic()
                ids = [c.request("improve", {"idea": IDEA, "stream": i % 2 == 0})
                       for i in range(MAX_CONCURRENT)]
                for rid in ids:
                    msg = c.response(rid)
                    e = msg.get("error")
                    self.assertIsNotNone(e, str(msg)[:300])
                    self.assertEqual(e["code"], -32003, e)
                    self.assertIn("exceeded %d bytes" % LIMIT_UPSTREAM_RESPONSE_BYTES,
                                  e["message"])
                elapsed = time.monotonic() - t0
                c.close()
                sent += len(ids)
                self.assertLess(elapsed, 20 * SLOW, "the cut came at the deadline, not the limit")
                time.sleep(0.2)
                rounds.append((elapsed, rss_kb(pid)))
            hwm = proc_status(pid, "VmHWM")
            print("    endless body, %s: %d answers cut at %d MiB; rounds %s; RSS start %d kB, "
                  "peak %d kB" % (provider, sent, LIMIT_UPSTREAM_RESPONSE_BYTES >> 20,
                                  ", ".join("%.2f s -> %d kB" % r for r in rounds), rss0, hwm))
            if RSS_MEANINGFUL:
                round_kb = MAX_CONCURRENT * LIMIT_UPSTREAM_RESPONSE_BYTES // 1024
                self.assertLess(hwm - rss0, 4 * round_kb, "peak RSS beyond the per-request limit")
                # malloc keeps freed buffers for reuse (up to ~60 MB seen after
                # a round, not growing); buffers leaked would add a round's
                # worth (64 MiB) per round, 256 MiB by now. LSan checks leaks
                # exactly on the ASan build.
                self.assertLess(rounds[-1][1] - rss0, 2 * round_kb, "RSS grows round by round")
            self.assertEqual(d.call("health")["result"]["llm"]["in_flight"], 0)
            self.assertEqual(d.stop(), 0)
            return sent
        finally:
            d.cleanup()


# ---------------------------------------------------------------------------
# Disk
# ---------------------------------------------------------------------------

class ReadOnlyDirectory(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="pd-faults-", dir="/tmp")
        if not can_make_dirs_read_only(self.scratch):
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.skipTest("cannot make a directory read-only here (as root that takes chattr +i "
                          "on a filesystem with attributes)")

    def tearDown(self):
        shutil.rmtree(self.scratch, ignore_errors=True)

    def run_read_only(self, d, during):
        """Records from two clients; makes the database directory immutable
        mid-run; calls during(recorder) while it is; makes it writable, and
        goes on until 50 more ids have been handed out (for the breaker,
        after its pause: only a row recorded then closes it)."""
        dbdir = os.path.dirname(db_file(d))
        rec = Recorder(d, clients=2, window=10, pause=0.01, prefix="read-only dir row").start()
        try:
            wait_for(lambda: len(rec.ids()) > 50, 10, what="rows before the fault")
            read_only_dir(dbdir, True)
            try:
                during(rec)
            finally:
                read_only_dir(dbdir, False)
            self.repaired_at = len(rec.answers)
            n = len(rec.ids())
            wait_for(lambda: len(rec.ids()) > n + 50, 15, what="ids after the repair")
        finally:
            rec.stop()
        self.assertEqual(rec.errors, [])
        return rec

    def test_wal_database_keeps_recording_in_a_read_only_directory(self):
        """In WAL mode the -wal and -shm files already exist: nothing needs
        creating, so recording goes on and not one row is lost."""
        d = builtin_daemon()
        try:
            d.start()

            def during(rec):
                n = len(rec.ids())
                wait_for(lambda: len(rec.ids()) > n + 200, 10, what="rows while read-only")
                h = settled(d)
                self.assertEqual((h["status"], h["failures"], h["dropped_writes"]),
                                 ("healthy", 0, 0), h)
                # Reads work too (rows go on arriving meanwhile).
                self.assertGreaterEqual(d.call("history.list", {"limit": 1})["result"]["total"],
                                        h["total_records"])

            rec = self.run_read_only(d, during)
            ids = rec.ids()
            self.assertEqual(rec.nulls(), 0)
            self.assertEqual(d.stop(), 0)
            self.assertEqual(integrity(db_file(d)), "ok")
            self.assertEqual(set(ids) - stored_ids(db_file(d)), set())
            print("    read-only directory, WAL: %d rows, none lost" % len(ids))
        finally:
            d.cleanup()

    def test_rollback_journal_in_a_read_only_directory_opens_the_breaker(self):
        """With a rollback journal every write creates a file in the
        directory: writes fail, the breaker opens after five (improve keeps
        answering, with id null), health says so, and after the directory
        is writable again and the pause is over, recording resumes. Every
        handed-out id is in the file or counted as dropped."""
        d = builtin_daemon(SQLITE_WAL_MODE="false", PROMPTD_TEST_CIRCUIT_PAUSE_MS=1000)
        try:
            d.start()
            seen = {}

            def during(rec):
                h = wait_for(lambda: (lambda x: x if x["status"] == "circuit_open" else None)(
                    database(d)), 15, what="an open circuit")
                seen.update(h)
                self.assertGreaterEqual(h["failures"], 5)
                self.assertGreaterEqual(h["dropped_writes"], 5)
                self.assertEqual(d.call("health")["result"]["status"], "degraded")
                n = rec.nulls()
                wait_for(lambda: rec.nulls() > n, 10, what="improve answering id null")
                self.assertEqual(d.call("ping")["result"], "pong")

            rec = self.run_read_only(d, during)
            ids = rec.ids()
            after = [i for t, i in rec.answers[-20:] if i is not None]
            self.assertEqual(len(after), 20, "ids after the repair")
            missing, h = assert_accounted(self, d, ids, rec.nulls(), db_file(d))
            self.assertEqual(h["status"], "healthy", h)
            self.assertEqual(set(after) - stored_ids(db_file(d)), set())
            self.assertIn("persistence resumed", d.log())
            self.assertEqual(d.stop(), 0)
            self.assertEqual(integrity(db_file(d)), "ok")
            print("    read-only directory, rollback journal: %d ids handed out, %d null; "
                  "%d dropped (%d of them handed out); last error: %s"
                  % (len(ids), rec.nulls(), h["dropped_writes"], len(missing),
                     seen.get("last_error")))
        finally:
            d.cleanup()

    def test_start_in_a_read_only_directory(self):
        """A rollback-journal database whose directory is read-only at
        start-up: the daemon starts anyway (a disk problem at open is not
        fatal), improve answers, and once the directory is writable and
        the pause is over, rows are recorded again."""
        d = builtin_daemon(SQLITE_WAL_MODE="false", PROMPTD_TEST_CIRCUIT_PAUSE_MS=800)
        d2 = None
        dbdir = os.path.dirname(db_file(d))
        try:
            d.start()
            self.assertIsInstance(d.call("improve", {"idea": IDEA})["result"]["id"], int)
            self.assertEqual(d.stop(), 0)
            read_only_dir(dbdir, True)
            try:
                d2 = Daemon(env=dict(d.env), home=d.home).start()
                c = d2.client()
                for i in range(6):
                    self.assertIn("result", c.call("improve", {"idea": "read-only start %d" % i}))
                    time.sleep(0.05)
                h = wait_for(lambda: (lambda x: x if x["status"] == "circuit_open" else None)(
                    database(d2)), 10, what="an open circuit")
                # chattr: the journal cannot be created; chmod: SQLite sees a
                # read-only database. Either way the sentence names the cause.
                self.assertRegex(h["last_error"], "cannot be opened|read-only")
                self.assertEqual(c.call("history.list")["result"]["total"], 1)  # reads work
                c.close()
            finally:
                read_only_dir(dbdir, False)
            time.sleep(0.9)
            r = wait_for(lambda: d2.call("improve", {"idea": "the directory is writable"})
                         ["result"]["id"], 10, interval=0.2, what="an id again")
            settled(d2)
            self.assertEqual(d2.call("history.get", {"id": r})["result"]["original_idea"],
                             "the directory is writable")
            self.assertEqual(d2.stop(), 0)
        finally:
            if d2 is not None:
                d2.cleanup()
            d.cleanup()


class DiskFull(unittest.TestCase):
    def test_a_full_tmpfs(self):
        """The database on a 4 MiB tmpfs, filled with a ballast file: writes
        fail with "the disk is full", the breaker opens, improve answers id
        null, reads still work; the ballast goes, the pause ends, recording
        resumes. The account of dropped rows is exact; the file is sound."""
        if not is_root():
            self.skipTest("mounting a tmpfs needs root (the max_page_count variant is in "
                          "test_history)")
        home = tempfile.mkdtemp(prefix="pd-", dir="/tmp")
        mnt = os.path.join(home, "mnt")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(home, ignore_errors=True)
            self.skipTest("cannot mount a tmpfs here: %s" % r.stderr.strip())
        path = os.path.join(mnt, "history.db")
        d = Daemon(home=home, env={"LLM_PROVIDER": "builtin", "SQLITE_DB_PATH": path,
                                   "PROMPTD_TEST_CIRCUIT_PAUSE_MS": "1000"})
        try:
            d.start()
            c = d.client()
            ids, nulls = [], 0

            def improve(**params):
                nonlocal nulls
                params.setdefault("idea", IDEA)
                rid = c.result("improve", params)["id"]
                if rid is None:
                    nulls += 1
                else:
                    ids.append(rid)
                return rid

            for i in range(5):
                improve(idea="before the disk fills %d" % i)
            settled(d)
            st = os.statvfs(mnt)
            ballast = os.path.join(mnt, "ballast")
            with open(ballast, "wb") as f:
                try:
                    f.write(b"\0" * (st.f_bavail * st.f_frsize - 128 * 1024))
                except OSError:
                    pass
            big = "the context that fills the disk " * 3000
            for i in range(40):
                improve(idea="filling the disk %d" % i, context=big)
                if database(d)["status"] == "circuit_open":
                    break
                time.sleep(0.05)
            h = settled(d)
            self.assertEqual(h["status"], "circuit_open", h)
            self.assertIn("disk is full", h["last_error"])
            self.assertIsNone(improve())
            self.assertEqual(c.result("history.list", {"limit": 1})["total"], h["total_records"])
            os.remove(ballast)
            time.sleep(1.1)
            rid = wait_for(lambda: improve(idea="space again"), 10, interval=0.2,
                           what="an id again")
            h = settled(d)
            self.assertEqual(h["status"], "healthy", h)
            self.assertEqual(c.result("history.get", {"id": rid})["original_idea"], "space again")
            missing, h = assert_accounted(self, d, ids, nulls, path)
            c.close()
            self.assertEqual(d.stop(), 0)
            self.assertEqual(integrity(path), "ok")
            print("    full tmpfs: %d ids handed out, %d null, %d dropped (%d handed out)"
                  % (len(ids), nulls, h["dropped_writes"], len(missing)))
        finally:
            if d.proc is not None:
                d.proc.kill()
                d.proc.wait()
                d.proc = None
            if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mnt], capture_output=True)
            d.cleanup()
            shutil.rmtree(home, ignore_errors=True)  # d does not own it


class ExclusiveLock(unittest.TestCase):
    @staticmethod
    def start_locked(d):
        """Starts d, records one row, then holds an exclusive lock on its
        database from another connection, which it returns."""
        d.start()
        d.call("improve", {"idea": "a row before the lock"})
        settled(d)
        blocker = sqlite3.connect(db_file(d), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        return blocker

    def test_another_process_holds_an_exclusive_lock_for_10_s(self):
        """slow: ~12 s. Another process holds BEGIN EXCLUSIVE on the WAL
        database for 10 s while rows are recorded. improve keeps answering
        at once (with ids: five failures take 25 s of busy waiting, so the
        breaker stays closed), ping and health never wait; a batch that
        waits out the 5 s busy timeout fails (health: unhealthy, failures,
        "locked") and is kept and tried again; once the lock goes every row
        is written and health is healthy. Nothing is dropped; the file is
        sound."""
        d = builtin_daemon(PROMPTD_TEST_CIRCUIT_PAUSE_MS=1000)
        try:
            blocker = self.start_locked(d)
            locked_at = time.monotonic()
            rec = Recorder(d, clients=1, window=5, pause=0.05, prefix="locked row").start()
            samples, worst = [], 0.0
            try:
                p = d.client()
                while time.monotonic() - locked_at < 10.0:
                    t0 = time.monotonic()
                    self.assertEqual(p.call("ping")["result"], "pong")
                    h = p.result("health")["database"]
                    worst = max(worst, time.monotonic() - t0)
                    samples.append(h)
                    time.sleep(0.1)
                p.close()
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            released = len(rec.answers)
            wait_for(lambda: database(d)["status"] == "healthy", 15, what="healthy again")
            wait_for(lambda: len(rec.answers) > released + 20, 10, what="rows after the lock")
            rec.stop()
            self.assertEqual(rec.errors, [])
            self.assertLess(worst, 1.0 * SLOW, "ping or health waited for the disk")
            bad = [s for s in samples if s["status"] == "unhealthy"]
            self.assertTrue(bad, "health never showed the failing writes")
            self.assertTrue(any("locked" in (s["last_error"] or "") for s in bad), bad[-1])
            self.assertGreater(max(s["pending_writes"] for s in samples), 0)
            ids = rec.ids()
            during = [i for t, i in rec.answers if t < locked_at + 10.0]
            self.assertNotIn(None, during, "the breaker opened: 10 s is two busy timeouts")
            missing, h = assert_accounted(self, d, ids, rec.nulls(), db_file(d))
            self.assertEqual(h["failures"], 0)
            self.assertGreaterEqual(h["total_failures"], 1)
            self.assertEqual(h["dropped_writes"], 0, "a failed batch is tried again, not dropped")
            last = ids[-1]
            self.assertIn("result", d.call("history.get", {"id": last}))
            self.assertEqual(d.stop(), 0)
            self.assertEqual(integrity(db_file(d)), "ok")
            print("    exclusive lock 10 s: %d ids handed out (%d while locked), %d failed "
                  "batches, %d rows dropped; ping/health worst %.0f ms"
                  % (len(ids), len(during), h["total_failures"], h["dropped_writes"],
                     worst * 1000))
        finally:
            d.cleanup()


    def test_sigterm_while_the_database_stays_locked(self):
        """slow: ~10 s. Rows queue up behind a lock that never goes away,
        then SIGTERM: the daemon tries once more, gives up after one busy
        timeout (not one per queued batch), says how many rows it could not
        write, and exits 0; the file is sound and holds what it held."""
        d = builtin_daemon()
        try:
            blocker = self.start_locked(d)
            try:
                rec = Recorder(d, clients=4, window=100, prefix="locked row").start()
                wait_for(lambda: len(rec.answers) > 2 * 4096 + 100, 30,
                         what="more than two batches queued")
                rec.stop()
                self.assertEqual(rec.errors, [])
                self.assertEqual(d.stop(timeout=15), 0)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            log = d.log()
            self.assertIn("rows dropped", log)
            self.assertIn("dropped without a try", log)
            self.assertEqual(stored_ids(db_file(d)), {1})
            self.assertEqual(integrity(db_file(d)), "ok")
        finally:
            d.cleanup()


# ---------------------------------------------------------------------------
# Process
# ---------------------------------------------------------------------------

class Crash(unittest.TestCase):
    CLIENTS = 4
    WINDOW = 100

    def loaded(self, d, seconds):
        """Starts recording from pipelining clients and a health monitor;
        returns (recorder, samples), samples being (time sent, health.database)."""
        rec = Recorder(d, clients=self.CLIENTS, window=self.WINDOW, prefix="crash row").start()
        samples = []
        stop = threading.Event()

        def monitor():
            try:
                m = d.client(timeout=10)
                while not stop.is_set():
                    t = time.monotonic()
                    samples.append((t, m.result("health")["database"]))
                    time.sleep(0.02)
            except (OSError, ValueError, AssertionError, ConnectionError):
                pass

        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        time.sleep(seconds)
        return rec, samples, stop, mon

    def test_kill9_under_load_then_restart(self):
        """slow: ~6 s. Four clients pipeline improve (record: true) at about
        10k rows per second; kill -9. The file passes integrity_check; every
        handed-out id up to the last committed one is there; the rows lost
        are all after it, and no more than were queued (the last health
        sample's pending rows plus every id answered after it was asked);
        the rows health had seen committed are all there. A restart on the
        same file answers and goes on from there."""
        d = builtin_daemon(LOG_LEVEL="warn")
        try:
            d.start()
            t_start = time.monotonic()
            rec, samples, stop, mon = self.loaded(d, 2.5)
            self.assertTrue(samples, "health never answered under load")
            last_t, last = samples[-1]
            d.proc.kill()
            killed_at = time.monotonic()
            d.proc.wait()
            stop.set()
            rec.stop()
            mon.join(5)
            d.proc = None
            d.log_file.close()
            d.check_sanitizers()
            self.assertEqual(rec.errors, [])
            ids = rec.ids()
            self.assertEqual(rec.nulls(), 0, "rows were refused: the queue was full")
            path = db_file(d)
            self.assertEqual(integrity(path), "ok")
            present = stored_ids(path)
            self.assertTrue(present, "nothing was committed before the kill")
            last_commit = max(present)
            lost = sorted(set(ids) - present)
            answered_after = sum(1 for t, i in rec.answers if t >= last_t)
            bound = last["pending_writes"] + answered_after
            rate = len(ids) / (killed_at - t_start)
            print("    kill -9: %d ids handed out (~%.0f rows/s), %d in the file, last commit id "
                  "%d; lost %d (bound %d = %d pending at the last health sample + %d answered "
                  "after it; queue limit %d); health had seen %d committed"
                  % (len(ids), rate, len(present), last_commit, len(lost), bound,
                     last["pending_writes"], answered_after, LIMIT_STORE_QUEUE_ROWS,
                     last["committed_writes"]))
            self.assertEqual([i for i in ids if i <= last_commit and i not in present], [],
                             "a row before the last commit point is missing")
            self.assertLessEqual(len(lost), bound)
            self.assertLessEqual(len(lost), LIMIT_STORE_QUEUE_ROWS)
            self.assertGreaterEqual(len(present), last["committed_writes"],
                                    "rows health saw committed are gone")

            d2 = Daemon(env=dict(d.env), home=d.home)
            with d2:
                c = d2.client()
                self.assertEqual(c.result("db.check")["ok"], True)
                self.assertEqual(c.result("history.list", {"limit": 1})["total"], len(present))
                r = c.result("improve", {"idea": "after the crash"})
                self.assertGreater(r["id"], last_commit)
                self.assertEqual(c.result("history.get", {"id": r["id"]})["original_idea"],
                                 "after the crash")
                c.close()
        finally:
            d.cleanup()

    def test_sigterm_under_load_loses_nothing(self):
        """slow: ~6 s. The same load; SIGTERM while clients are still
        sending. The daemon exits 0 and every id any answer handed out is in
        the file."""
        d = builtin_daemon(LOG_LEVEL="warn")
        try:
            d.start()
            rec, samples, stop, mon = self.loaded(d, 1.5)
            pending = samples[-1][1]["pending_writes"] if samples else 0
            d.proc.send_signal(signal.SIGTERM)
            code = d.proc.wait(60 * SLOW)
            stop.set()
            rec.stop()
            mon.join(5)
            self.assertEqual(d.stop(), 0)
            self.assertEqual(code, 0)
            self.assertEqual(rec.errors, [])
            ids = rec.ids()
            path = db_file(d)
            self.assertEqual(integrity(path), "ok")
            lost = set(ids) - stored_ids(path)
            print("    SIGTERM under load: %d ids handed out, %d rows queued shortly before, "
                  "%d lost" % (len(ids), pending, len(lost)))
            self.assertEqual(sorted(lost), [])
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
