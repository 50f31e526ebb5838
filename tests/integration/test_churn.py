"""Clients that vanish: for PROMPTD_CHURN_SECONDS (default 60), up to 1000
clients connect, send improve requests (some half-written), and disappear
at random mid-request. Afterwards the daemon has no leaked fd (counted in
/proc/PID/fd), no request or upstream transfer left in flight, and its RSS
is back near where it started."""
import os
import random
import socket
import sys
import time
import unittest

from harness import RSS_MEANINGFUL, SLOW, Daemon

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_llm import FakeLLM  # noqa: E402

SECONDS = float(os.environ.get("PROMPTD_CHURN_SECONDS", "60"))
MAX_CLIENTS = 1000
CONCURRENT = 8  # MAX_CONCURRENT_REQUESTS below
# Idle keep-alive connections libcurl may cache to the backend: at most
# MAX_CONCURRENT_REQUESTS + LLM_SPARE_CONNECTIONS (4). Reuse, not leaks.
UPSTREAM_CACHE = CONCURRENT + 4
RSS_SLACK_KB = 32 * 1024


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def connect(path):
    """A connection, waiting while the listen backlog is full (EAGAIN)."""
    deadline = time.monotonic() + 10 * SLOW
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5 * SLOW)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def improve_line(i, stream):
    return (b'{"jsonrpc":"2.0","id":%d,"method":"improve","params":{"idea":"churn test idea %d",'
            b'"stream":%s,"record":false}}\n' % (i, i, b"true" if stream else b"false"))


class ChurnTest(unittest.TestCase):
    def test_vanishing_clients_leak_nothing(self):
        fake = FakeLLM("ollama", delay_s=0.05, chunk_delay_s=0.01)
        fake.start()
        d = Daemon(env={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": fake.url,
                        "MAX_CONCURRENT_REQUESTS": str(CONCURRENT),
                        "MAX_QUEUED_REQUESTS": "2000", "LOG_LEVEL": "warn"})
        try:
            d.start()
            pid = d.proc.pid
            c = d.client()
            self.assertIn("result", c.call("improve", {"idea": "warm up the daemon first"}))
            c.close()
            time.sleep(0.2)
            fds0, rss0 = fd_count(pid), rss_kb(pid)

            rnd = random.Random(1234)
            pool, n, vanished, peak = [], 0, 0, 0
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                action = rnd.random()
                if (action < 0.55 and len(pool) < MAX_CLIENTS) or not pool:
                    s = connect(d.socket)
                    n += 1
                    line = improve_line(n, rnd.random() < 0.5)
                    if rnd.random() < 0.2:
                        s.sendall(line[:rnd.randint(1, len(line) - 1)])  # half a request
                    else:
                        s.sendall(line * rnd.randint(1, 3))
                    pool.append(s)
                elif action < 0.9:
                    s = pool.pop(rnd.randrange(len(pool)))
                    s.close()  # vanish, request or not
                    vanished += 1
                else:
                    s = rnd.choice(pool)
                    s.setblocking(False)
                    try:
                        s.recv(65536)
                    except (BlockingIOError, ConnectionError):
                        pass
                    s.setblocking(True)
                peak = max(peak, len(pool))
                if n % 200 == 0:
                    time.sleep(0.01)  # let the loop breathe now and then
            for s in pool:
                s.close()

            # Every request ends: answered, cancelled or dropped with its client.
            settle = time.monotonic() + 30 * SLOW
            while True:
                h = d.call("health")["result"]
                if h["requests"]["in_flight"] == 0:
                    break
                self.assertLess(time.monotonic(), settle, "requests still in flight: %s" % h)
                time.sleep(0.1)
            time.sleep(0.5)
            fds1, rss1 = fd_count(pid), rss_kb(pid)
            print("    churn: %d clients (%d at once at the peak), %d vanished; fds %d -> %d; "
                  "RSS %d -> %d kB" % (n, peak, vanished, fds0, fds1, rss0, rss1))
            self.assertGreater(n, 1000, "the churn made too few clients to mean anything")
            self.assertGreaterEqual(peak, MAX_CLIENTS * 9 // 10, "never near 1000 clients at once")
            self.assertLessEqual(fds1, fds0 + UPSTREAM_CACHE, "fds leaked")
            if RSS_MEANINGFUL:
                self.assertLess(rss1, rss0 + RSS_SLACK_KB, "RSS did not come back")
            # The backend saw the vanished clients' transfers aborted.
            self.assertTrue(any(e["type"] == "client_disconnected" for e in fake.events()))
            self.assertEqual(d.call("ping")["result"], "pong")
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()
            fake.stop()


if __name__ == "__main__":
    unittest.main()
