"""Connections under attack (issue 11, items 11 and 12), through the real
daemon against the fake Ollama of tests/fakes/fake_llm.py.

- Item 11: answers queued for a client that does not read stay bounded
  (docs/limits.md, "Clients"): 300 pipelined history.get of a 1 MB row
  never read keep the daemon's RSS bounded, and once the client reads,
  every answer arrives whole. A string id is bounded too
  (LIMIT_REQUEST_ID_BYTES): a streaming improve with a 1 MB id is refused
  before anything is streamed.
- Item 12: a half-closed connection (shutdown(SHUT_WR), as `printf ... |
  socat - UNIX-CONNECT:...` does) still gets every answer, then EOF; a
  client that goes away entirely still cancels its requests.

RSS is judged only without ASan or valgrind (harness.RSS_MEANINGFUL).
Figures are printed on lines starting with four spaces."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

from harness import RSS_MEANINGFUL, Daemon, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_llm import DEFAULT_RESULT, FakeLLM  # noqa: E402

IDEA = "email my landlord about the broken heater"
# Keep in step with include/promptd_limits.h.
LIMIT_REQUEST_ID_BYTES = 256
LIMIT_CONN_OUTPUT_HARD_BYTES = 64 * 1024 * 1024
# A row whose history.get answer is about 1 MB: four model-written fields,
# each just under the 256 KiB a stored field may hold
# (LIMIT_RESULT_FIELD_BYTES).
BIG_PROMPT = ("Write the whole spring menu launch plan, step by step. " * 5000)[:250000]
BIG_FIELDS = dict(improved_prompt=BIG_PROMPT, reasoning=BIG_PROMPT, directive=BIG_PROMPT,
                  framework=BIG_PROMPT)
PIPELINED = 300
# What the daemon may grow by while 300 MB of answers wait for a client that
# does not read: the hard ceiling plus room for the allocator. Before the
# fix it grew by the whole 300 MB.
RSS_GROWTH_MAX_KB = (LIMIT_CONN_OUTPUT_HARD_BYTES + 64 * 1024 * 1024) // 1024


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def line(obj):
    return json.dumps(obj).encode() + b"\n"


def read_all(sock):
    """Everything until EOF, as parsed lines."""
    buf = b""
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    return [json.loads(x) for x in buf.split(b"\n") if x.strip()]


class FakeBackedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()
        cls.d = Daemon(config={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": cls.fake.url,
                               "LOG_LEVEL": "info"}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.d.stop()
            assert code == 0, "promptd exited %s:\n%s" % (code, cls.d.log()[-4000:])
        finally:
            cls.d.cleanup()
            cls.fake.stop()

    def setUp(self):
        self.fake.reset()

    def tearDown(self):
        # After each abuse, a fresh client is still served.
        self.assertEqual(self.d.call("ping")["result"], "pong")

    def in_flight(self):
        return self.d.call("health")["result"]["requests"]["in_flight"]

    def requests_counters(self):
        return self.d.call("health")["result"]["requests"]


class OutputBoundTest(FakeBackedTest):
    def big_row(self):
        """Records one improve whose long fields are BIG_FIELDS."""
        self.fake.configure(result=dict(DEFAULT_RESULT, **BIG_FIELDS))
        c = self.d.client(timeout=60)
        try:
            r = c.result("improve", {"idea": IDEA})
            self.assertEqual(len(r["improved_prompt"]), len(BIG_PROMPT))
            row = r["id"]
            self.assertIsInstance(row, int)
            got = wait_for(lambda: "result" in c.call("history.get", {"id": row}), 20,
                           what="the big row in history")
            self.assertTrue(got)
            return row
        finally:
            c.close()

    def settle(self):
        """Waits until nothing is in flight and nothing was answered
        between two looks but the second look itself: the daemon has done
        what it will do for a client that does not read."""
        before = None
        while True:
            now = self.requests_counters()
            if before and now["in_flight"] == 0 and now["served"] == before["served"] + 1:
                return
            before = now
            time.sleep(0.5)

    def test_pipelined_big_answers_stay_bounded_and_all_arrive(self):
        row = self.big_row()
        pid = self.d.proc.pid
        rss0 = rss_kb(pid)
        c = self.d.client(timeout=60)
        try:
            c.send_raw(b"".join(line({"jsonrpc": "2.0", "id": i, "method": "history.get",
                                      "params": {"id": row}}) for i in range(PIPELINED)))
            self.settle()
            rss1 = rss_kb(pid)
            print("    %d pipelined history.get of a %d-byte row, unread: RSS %d -> %d kB"
                  % (PIPELINED, len(BIG_PROMPT) * len(BIG_FIELDS), rss0, rss1))
            if RSS_MEANINGFUL:
                self.assertLess(rss1 - rss0, RSS_GROWTH_MAX_KB,
                                "the daemon queued %d kB for a client that does not read"
                                % (rss1 - rss0))
            # Others are served meanwhile.
            self.assertEqual(self.d.call("ping")["result"], "pong")
            # The client reads at last: every answer is there, whole.
            seen = set()
            for _ in range(PIPELINED):
                m = c.recv()
                self.assertIsNotNone(m, "the daemon closed a client that reads late")
                self.assertNotIn("error", m, str(m)[:300])
                self.assertEqual(m["result"]["improved_prompt"], BIG_PROMPT)
                seen.add(m["id"])
            self.assertEqual(seen, set(range(PIPELINED)))
        finally:
            c.close()
        self.assertEqual(self.requests_counters()["output_limit_disconnections"], 0)

    def test_slow_requests_in_flight_do_not_hold_back_a_cancel(self):
        # The pause for answers expected from requests in flight must not
        # stop a fresh connection's few improves from being cancelled.
        self.fake.configure(delay_s=30)
        c = self.d.client(timeout=20)
        try:
            ids = [c.request("improve", {"idea": IDEA, "record": False}) for _ in range(8)]
            self.fake.wait_requests(8, 20)
            self.assertEqual(c.result("cancel", {"request_id": ids[0]}), {"cancelled": True})
            self.assertEqual(c.response(ids[0])["error"]["code"], -32800)
        finally:
            c.close()
        wait_for(lambda: self.in_flight() == 0, 20, what="the improves cancelled")

    def test_string_id_one_byte_below_and_above_the_limit(self):
        c = self.d.client()
        try:
            ok = "i" * LIMIT_REQUEST_ID_BYTES
            c.send({"jsonrpc": "2.0", "id": ok, "method": "ping"})
            self.assertEqual(c.recv(), {"jsonrpc": "2.0", "id": ok, "result": "pong"})
            # Bytes, not characters: 128 two-byte characters are at the limit.
            two = "\u00e9" * (LIMIT_REQUEST_ID_BYTES // 2)
            c.send({"jsonrpc": "2.0", "id": two, "method": "ping"})
            self.assertEqual(c.recv()["id"], two)
            c.send({"jsonrpc": "2.0", "id": ok + "i", "method": "ping"})
            m = c.recv()
            self.assertIsNone(m["id"])
            self.assertEqual(m["error"]["code"], -32600)
            self.assertEqual(m["error"]["data"]["kind"], "invalid_request")
            self.assertIn(str(LIMIT_REQUEST_ID_BYTES), m["error"]["message"])
            # The connection goes on.
            self.assertEqual(c.call("ping")["result"], "pong")
        finally:
            c.close()

    def test_streaming_improve_with_a_long_id_is_refused(self):
        self.fake.configure(chunk_size=1)
        c = self.d.client(timeout=30)
        try:
            c.send({"jsonrpc": "2.0", "id": "x" * 1000000, "method": "improve",
                    "params": {"idea": IDEA, "stream": True}})
            m = c.recv()
            self.assertFalse("method" in m, "a delta was streamed for a request with a 1 MB id")
            self.assertIsNone(m["id"])
            self.assertEqual(m["error"]["code"], -32600)
            self.assertEqual(m["error"]["data"]["kind"], "invalid_request")
            self.assertEqual(self.fake.requests(), [], "the backend was asked anyway")
            # A short string id streams as before.
            c.send({"jsonrpc": "2.0", "id": "short", "method": "improve",
                    "params": {"idea": IDEA, "stream": True}})
            text = ""
            while True:
                m = c.recv()
                if "method" in m:
                    self.assertEqual(m["params"]["request_id"], "short")
                    text += m["params"]["text"]
                    continue
                self.assertEqual(m["id"], "short")
                self.assertEqual(m["result"]["improved_prompt"], DEFAULT_RESULT["improved_prompt"])
                break
            self.assertEqual(text, DEFAULT_RESULT["improved_prompt"])
        finally:
            c.close()


class HalfCloseTest(FakeBackedTest):
    def test_half_close_gets_every_answer_then_eof(self):
        # The backend waits before it answers, so the improve is surely in
        # flight when the client half-closes.
        self.fake.configure(delay_s=1.0)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(self.d.socket)
            s.sendall(line({"jsonrpc": "2.0", "id": 1, "method": "improve",
                            "params": {"idea": IDEA, "record": False}}) +
                      line({"jsonrpc": "2.0", "id": 2, "method": "history.list",
                            "params": {"limit": 1}}) +
                      line({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
            s.shutdown(socket.SHUT_WR)
            msgs = read_all(s)  # returns at EOF: the daemon closed after the last answer
        finally:
            s.close()
        by_id = {m["id"]: m for m in msgs}
        self.assertEqual(sorted(by_id), [1, 2, 3], msgs)
        self.assertEqual(by_id[1]["result"]["improved_prompt"], DEFAULT_RESULT["improved_prompt"])
        self.assertIn("items", by_id[2]["result"])
        self.assertEqual(by_id[3]["result"], "pong")
        self.assertEqual(len(self.fake.requests()), 1)
        self.assertIsNone(self.fake.wait_event("client_disconnected", 0.1),
                          "the upstream request was cut")

    def test_half_close_with_a_last_line_without_newline(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect(self.d.socket)
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
                      b'{"jsonrpc":"2.0","id":2,"method":"ping"}')
            s.shutdown(socket.SHUT_WR)
            msgs = read_all(s)
        finally:
            s.close()
        self.assertEqual(msgs, [{"jsonrpc": "2.0", "id": 1, "result": "pong"},
                                {"jsonrpc": "2.0", "id": 2, "result": "pong"}])

    def test_disconnect_still_cancels(self):
        self.fake.configure(delay_s=30)
        c = self.d.client()
        c.request("improve", {"idea": IDEA, "record": False})
        self.fake.wait_requests(1, 10)
        c.close()
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 10),
                             "the upstream request outlived its client")
        wait_for(lambda: self.in_flight() == 0, 10, what="the improve cancelled")

    def test_half_close_then_close_still_cancels(self):
        # socat, for one, waits 0.5 s after its input ends, then closes.
        self.fake.configure(delay_s=30)
        c = self.d.client()
        c.request("improve", {"idea": IDEA, "record": False})
        self.fake.wait_requests(1, 10)
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)  # let the daemon see the half-close first
        self.assertEqual(self.in_flight(), 1, "a half-close cancelled the improve")
        c.close()
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 10),
                             "the upstream request outlived its client")
        wait_for(lambda: self.in_flight() == 0, 10, what="the improve cancelled")

    @unittest.skipUnless(shutil.which("socat"), "socat is not installed")
    def test_readme_socat_example(self):
        out = subprocess.run(
            "printf '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\\n' | "
            "socat - UNIX-CONNECT:%s" % self.d.socket,
            shell=True, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, '{"jsonrpc":"2.0","id":1,"result":"pong"}\n')

    @unittest.skipUnless(shutil.which("socat"), "socat is not installed")
    def test_socat_gets_a_slow_answer(self):
        # socat -t: how long it waits for answers after its input ends.
        self.fake.configure(delay_s=1.0)
        req = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "improve",
                          "params": {"idea": IDEA, "record": False}})
        out = subprocess.run(["socat", "-t", "30", "-", "UNIX-CONNECT:" + self.d.socket],
                             input=req + "\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        m = json.loads(out.stdout)
        self.assertEqual(m["result"]["improved_prompt"], DEFAULT_RESULT["improved_prompt"])


if __name__ == "__main__":
    unittest.main()
