"""Issue 11, items 16 to 18: the improve engine's words under pressure and
its streamed text, through the real daemon and the fake LLM servers.

- 16: out of file descriptors, improve says "too many open files" and the
  limit (-32005 overloaded, data.open_files_limit), not "Ollama is not
  running"; the daemon keeps serving once connections close.
- 17: a request waiting for an upstream slot never times out with the
  first-byte message (that clock starts when the request goes upstream);
  the wait has its own bound, MAX_QUEUE_WAIT_MS, and its own error
  (-32005 naming the time waited, data.waited_ms).
- 18: string fields padded with spaces (as llama.cpp writes them): the
  streamed improve.delta text concatenates to the trimmed
  improved_prompt, on every provider."""
import copy
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from fake_llm import DEFAULT_RESULT, FakeLLM  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402
from improve_common import API_KEY, IDEA, improve_stream  # noqa: E402

PROVIDERS = {"ollama": None, "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
             "gemini": "GEMINI_API_KEY"}


def provider_config(provider, fake, **extra):
    cfg = {"LLM_PROVIDER": provider, "LLM_BASE_URL": fake.url, "SQLITE_ENABLED": "false",
           "LOG_LEVEL": "warn"}
    if PROVIDERS[provider]:
        cfg[PROVIDERS[provider]] = API_KEY
    cfg.update(extra)
    return cfg


def configure(fake, provider, **kw):
    if PROVIDERS[provider]:
        kw.setdefault("api_key", API_KEY)
    fake.configure(**kw)


# ---- item 18: padded fields ----

# Leading and trailing ASCII and Unicode spaces (NBSP, ideographic space,
# a newline), and runs of inner spaces long enough to span the fake's
# 7-character stream frames, which must survive as they are.
PADDED_PROMPTS = [
    " poem ",
    "  \n\t Write a poem about the sea.\u00a0\u3000 \n",
    "Write       a poem;        then stop.          ",
    "\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003caf\u00e9 \U0001F680       \u00a0x \u2009",
]


class PaddedFieldsStream(unittest.TestCase):
    """Item 18 on every provider's streaming wire format."""

    def check_provider(self, provider):
        with FakeLLM(provider) as fake, Daemon(config=provider_config(provider, fake)) as d:
            c = d.client(timeout=30)
            try:
                for padded in PADDED_PROMPTS:
                    with self.subTest(provider=provider, prompt=padded):
                        result = copy.deepcopy(DEFAULT_RESULT)
                        result["improved_prompt"] = padded
                        result["role"] = "  " + result["role"] + "  "
                        for chunk in (1, 3, 7):
                            configure(fake, provider, result=result, chunk_size=chunk)
                            text, deltas, msg = improve_stream(c)
                            self.assertNotIn("error", msg, msg)
                            r = msg["result"]
                            self.assertEqual(r["improved_prompt"], padded.strip(
                                " \t\n\r\u00a0\u3000\u2003\u2009"))
                            self.assertEqual(r["role"], DEFAULT_RESULT["role"])
                            self.assertEqual(text, r["improved_prompt"], deltas)
                            self.assertTrue(all(deltas), deltas)  # no empty delta
            finally:
                c.close()

    def test_ollama(self):
        self.check_provider("ollama")

    def test_openai(self):
        self.check_provider("openai")

    def test_anthropic(self):
        self.check_provider("anthropic")

    def test_gemini(self):
        self.check_provider("gemini")

    def test_all_space_prompt_streams_nothing_extra(self):
        """A prompt of spaces only is no prompt: the model output is bad,
        and no space went out as a delta before that was known."""
        with FakeLLM("ollama") as fake, Daemon(config=provider_config("ollama", fake)) as d:
            result = copy.deepcopy(DEFAULT_RESULT)
            result["improved_prompt"] = "      \u00a0      "
            configure(fake, "ollama", result=result, chunk_size=2)
            c = d.client(timeout=30)
            try:
                text, deltas, msg = improve_stream(c)
            finally:
                c.close()
            self.assertEqual(msg["error"]["code"], -32003, msg)
            self.assertEqual(deltas, [])


# ---- item 17: the queue's own bound ----


def improve_many(d, n, params=None, timeout=60):
    """n improves at once, each on its own connection; their responses."""
    out = [None] * n

    def one(i):
        c = d.client(timeout=timeout)
        try:
            p = {"idea": IDEA}
            p.update(params or {})
            out[i] = c.call("improve", p)
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


class SlowAcceptProxy:
    """A TCP proxy to the fake whose listen queue (backlog 0: one
    connection) can be filled by a connection of its own, so the next
    connect hangs until the kernel retries it; block() fills it and lets go
    of it after a moment, while the SYN it dropped waits for its retry."""

    def __init__(self, port):
        self.port = port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.url = "http://127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.stopping = False
        self.accepting = threading.Event()
        self.accepting.set()
        self.threads = []

    def __enter__(self):
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.accepting.set()
        for t in self.threads:
            t.join(5)
        self.lsock.close()
        if getattr(self, "filler", None):
            self.filler.close()

    def block(self):
        """Fills the accept queue; it drains 0.5 s later."""
        self.accepting.clear()
        time.sleep(0.1)  # the accept loop is parked, outside accept()
        self.filler = socket.create_connection(self.lsock.getsockname())

        def release():
            time.sleep(0.5)
            self.accepting.set()

        threading.Thread(target=release, daemon=True).start()

    def accept_loop(self):
        while not self.stopping:
            if not self.accepting.is_set():
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([self.lsock], [], [], 0.02)
                if not ready or not self.accepting.is_set():
                    continue
                conn, _ = self.lsock.accept()
            except (OSError, ValueError):
                return
            if self.stopping:
                conn.close()
                return
            up = socket.create_connection(("127.0.0.1", self.port))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class QueueWait(unittest.TestCase):
    """Item 17."""

    def test_queued_requests_never_get_the_first_byte_message(self):
        """2 slots, 1 s answers, a 3 s first-byte wait, 10 at once: the last
        ones wait about 4 s for a slot, which is not the backend's fault."""
        with FakeLLM("ollama") as fake:
            fake.configure(delay_s=1.0)
            cfg = provider_config("ollama", fake, MAX_CONCURRENT_REQUESTS=2,
                                  LLM_FIRST_BYTE_TIMEOUT_MS=3000, MAX_QUEUE_WAIT_MS=60000)
            with Daemon(config=cfg) as d:
                out = improve_many(d, 10)
        for msg in out:
            self.assertNotIn("error", msg, msg)

    def test_first_byte_clock_starts_when_the_request_is_sent(self):
        """A connect that takes long is bounded by the connect timeout, not
        the first-byte one: the request had not reached the backend yet.
        The backend's accept queue is full, so the daemon's SYN is dropped
        and the kernel sends it again a second later (its initial RTO);
        meanwhile the queue is drained and the backend answers at once."""
        with FakeLLM("ollama") as fake, SlowAcceptProxy(fake.port) as proxy:
            cfg = provider_config("ollama", fake, LLM_BASE_URL=proxy.url,
                                  LLM_FIRST_BYTE_TIMEOUT_MS=800)
            with Daemon(config=cfg) as d:
                c = d.client(timeout=30)
                try:
                    proxy.block()
                    msg = c.call("improve", {"idea": IDEA})
                finally:
                    c.close()
        self.assertNotIn("error", msg, msg)
        self.assertEqual(fake.stats()["requests"], 1)

    def test_queue_wait_bound_answers_overloaded_with_the_wait(self):
        with FakeLLM("ollama") as fake:
            fake.configure(delay_s=1.5)
            cfg = provider_config("ollama", fake, MAX_CONCURRENT_REQUESTS=2,
                                  LLM_FIRST_BYTE_TIMEOUT_MS=3000, MAX_QUEUE_WAIT_MS=500)
            with Daemon(config=cfg) as d:
                out = improve_many(d, 10)
                self.assertEqual(d.call("config.get")["result"]["MAX_QUEUE_WAIT_MS"], 500)
        ok = [m for m in out if "error" not in m]
        failed = [m["error"] for m in out if "error" in m]
        # The first two had slots at once; the others waited past 500 ms.
        self.assertGreaterEqual(len(ok), 2, out)
        self.assertGreaterEqual(len(failed), 1, out)
        for e in failed:
            self.assertEqual(e["code"], -32005, e)
            self.assertEqual(e["data"]["kind"], "overloaded", e)
            self.assertNotIn("sent nothing", e["message"])
            self.assertIn("MAX_QUEUE_WAIT_MS", e["message"])
            waited = e["data"]["waited_ms"]
            self.assertGreaterEqual(waited, 500, e)
            self.assertIn("%d ms" % waited, e["message"])
        self.assertEqual(fake.stats()["requests"], len(ok))

    def test_queue_wait_default_is_shown(self):
        with Daemon(config={"LLM_PROVIDER": "builtin", "SQLITE_ENABLED": "false"}) as d:
            cfg = d.call("config.get")["result"]
        self.assertEqual(cfg["MAX_QUEUE_WAIT_MS"], 60000)


# ---- item 16: out of file descriptors ----

FD_LIMIT = 48


class LimitedDaemon(Daemon):
    """A daemon whose RLIMIT_NOFILE is FD_LIMIT."""

    def start(self, wait=True, timeout=15):
        self.log_file = open(self.log_path, "ab")

        def lower():
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

        self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=self.log_file,
                                     preexec_fn=lower)
        if wait:
            self.wait_ready(timeout)
        return self


def ping_ok(c):
    try:
        return c.call("ping").get("result") == "pong"
    except (OSError, ConnectionError, ValueError):
        return False


def fill_fds(d):
    """Opens idle connections until the daemon refuses one; returns them
    (every one answered ping, so the daemon holds an fd for each)."""
    idle = []
    for _ in range(FD_LIMIT + 10):
        c = d.client(timeout=5)
        if not ping_ok(c):
            c.close()
            return idle
        idle.append(c)
    raise AssertionError("the daemon accepted %d connections under a limit of %d"
                         % (len(idle), FD_LIMIT))


def client_if_served(d):
    """A client the daemon answers, or None (it was refused)."""
    c = d.client(timeout=10)
    if ping_ok(c):
        return c
    c.close()
    return None


class OutOfFds(unittest.TestCase):
    """Item 16."""

    def check(self, base_url_of, host="127.0.0.1"):
        with FakeLLM("ollama", host=host) as fake:
            cfg = {"LLM_PROVIDER": "ollama", "LLM_BASE_URL": base_url_of(fake),
                   "SQLITE_ENABLED": "false", "LOG_LEVEL": "warn"}
            with LimitedDaemon(config=cfg) as d:
                idle = fill_fds(d)
                self.assertGreater(len(idle), 5)
                # Free one fd and take it with the client that asks.
                idle.pop().close()
                c = wait_for(lambda: client_if_served(d), what="a connection after one closed")
                msg = c.call("improve", {"idea": IDEA})
                c.close()
                self.assertIn("error", msg, msg)
                e = msg["error"]
                self.assertNotIn("ollama serve", e["message"])
                self.assertIn("too many open files", e["message"])
                self.assertIn("limit is %d" % FD_LIMIT, e["message"])
                self.assertEqual(e["code"], -32005, e)
                self.assertEqual(e["data"]["kind"], "overloaded", e)
                self.assertEqual(e["data"]["open_files_limit"], FD_LIMIT, e)
                self.assertEqual(fake.stats()["requests"], 0)
                for k in idle:
                    k.close()

                # The daemon keeps serving once the connections are gone.
                def answered():
                    c = d.client(timeout=30)
                    try:
                        m = c.call("improve", {"idea": IDEA})
                    finally:
                        c.close()
                    return m if "error" not in m else None
                m = wait_for(answered, timeout=10, what="an improve after the idle clients left")
                self.assertEqual(m["result"]["improved_prompt"], DEFAULT_RESULT["improved_prompt"])
                self.assertIn("too many open files", d.log())

    def test_ip_literal_url(self):
        self.check(lambda fake: fake.url)

    def test_localhost_url(self):
        self.check(lambda fake: fake.url.replace("127.0.0.1", "localhost"))

    def test_host_name_url(self):
        """A name curl does not know itself goes to the resolver's thread,
        which needs fds too, and fails as a lookup. The machine's own name
        resolves to one loopback address: 127.0.0.1, or 127.0.1.1 as
        Debian's installer writes it in /etc/hosts; the fake listens there."""
        name = socket.gethostname()
        try:
            addrs = {a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)}
        except OSError:
            addrs = set()
        if len(addrs) != 1 or not next(iter(addrs)).startswith("127."):
            self.skipTest("this host's name (%s) does not resolve to one loopback address" % name)
        addr = next(iter(addrs))
        self.check(lambda fake: fake.url.replace(addr, name), host=addr)


if __name__ == "__main__":
    unittest.main()
