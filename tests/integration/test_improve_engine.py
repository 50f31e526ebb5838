"""The improve engine beyond one provider's wire format: params, the FIFO
queue and its limits, 200 concurrent improves while the loop keeps
answering, fallback to builtin, health.llm, prewarm and Ollama's options,
cancel in every state, shutdown with requests in flight."""
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

from improve_common import DEFAULT_RESULT, IDEA, error_of, free_port, improve, improve_stream
from fake_llm import FakeLLM, FakeLLMProcess
from harness import Daemon

BASE = {"SQLITE_ENABLED": "false", "LOG_LEVEL": "warn"}


def cfg(fake=None, **kw):
    c = dict(BASE)
    if fake is not None:
        c["LLM_BASE_URL"] = fake.url
    c.update({k: str(v) for k, v in kw.items()})
    return c


class Params(unittest.TestCase):
    """Validation answers -32602 naming the field, before any upstream call."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()
        cls.d = Daemon(config=cfg(cls.fake)).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.fake.stop()

    def setUp(self):
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()

    def bad(self, field, **params):
        msg = self.c.call("improve", params)
        e = error_of(msg)
        self.assertEqual(e["code"], -32602, e)
        self.assertEqual(e["data"]["field"], field, e)
        return e

    def test_idea_is_required_and_a_string(self):
        self.bad("idea")
        self.bad("idea", idea=42)
        self.bad("idea", idea=None)

    def test_idea_length_after_trimming_one_below_and_one_above(self):
        self.bad("idea", idea="  abcd  ")
        self.bad("idea", idea="\u00a0\u3000abcd\n")
        self.assertNotIn("error", self.c.call("improve", {"idea": " abcde ", "provider": "builtin"}))
        self.assertNotIn("error", self.c.call("improve", {"idea": "é" * 5, "provider": "builtin"}))
        self.assertNotIn("error",
                         self.c.call("improve", {"idea": "x" * 20000, "provider": "builtin"}))
        self.bad("idea", idea="x" * 20001)
        # Characters, not bytes: 20000 four-byte characters are fine.
        self.assertNotIn("error",
                         self.c.call("improve", {"idea": "🚀" * 20000, "provider": "builtin"}))

    def test_context_limit_one_below_and_one_above(self):
        ok = self.c.call("improve", {"idea": IDEA, "context": "c" * 100000, "provider": "builtin"})
        self.assertNotIn("error", ok)
        self.bad("context", idea=IDEA, context="c" * 100001)
        self.bad("context", idea=IDEA, context=["no"])

    def test_provider_model_mode_and_flags(self):
        self.bad("provider", idea=IDEA, provider="skynet")
        self.bad("provider", idea=IDEA, provider=1)
        self.bad("model", idea=IDEA, model="")
        self.bad("model", idea=IDEA, model="a b")
        self.bad("model", idea=IDEA, model="../../etc")
        self.bad("mode", idea=IDEA, mode="one-shot")
        self.bad("stream", idea=IDEA, stream="yes")
        self.bad("record", idea=IDEA, record=1)
        self.bad("parent_id", idea=IDEA, parent_id=0)
        self.bad("parent_id", idea=IDEA, parent_id="7")
        self.bad("client", idea=IDEA, client="c" * 65)
        self.assertEqual(self.fake.stats()["requests"], 0)

    def test_few_shot_needs_a_trainset(self):
        # This daemon has none (test_fewshot.py covers the daemons that do).
        e = self.bad("mode", idea=IDEA, mode="few-shot")
        self.assertIn("few-shot needs a trainset", e["message"])
        self.assertIn("set FEWSHOT_TRAINSET_PATH", e["message"])

    def test_zero_shot_is_accepted(self):
        r = self.c.result("improve", {"idea": IDEA, "mode": "zero-shot", "provider": "builtin"})
        self.assertEqual(r["backend"], "zero-shot")


class Builtin(unittest.TestCase):
    def test_builtin_answers_offline_labelled_and_streams(self):
        with Daemon(config=cfg(LLM_PROVIDER="builtin")) as d:
            c = d.client()
            r = c.result("improve", {"idea": IDEA})
            self.assertEqual(r["provider"], "builtin")
            self.assertEqual(r["model"], "builtin")
            self.assertLessEqual(r["confidence"], 0.3)
            self.assertIn(IDEA, r["improved_prompt"])
            text, deltas, msg = improve_stream(c)
            self.assertEqual(text, msg["result"]["improved_prompt"])
            self.assertEqual(c.result("models"), {"provider": "builtin", "models": ["builtin"]})
            again = c.result("improve", {"idea": IDEA})
            self.assertEqual(again["improved_prompt"], r["improved_prompt"])  # deterministic


class Fallback(unittest.TestCase):
    def test_refused_primary_falls_back_to_builtin(self):
        port = free_port()
        with Daemon(config=cfg(LLM_BASE_URL="http://127.0.0.1:%d" % port,
                               LLM_FALLBACK_PROVIDER="builtin")) as d:
            c = d.client()
            r = c.result("improve", {"idea": IDEA})
            self.assertEqual(r["provider"], "builtin")
            self.assertEqual(r["fallback_from"], "ollama")
            self.assertIn("ollama serve", r["fallback_reason"])
            self.assertLessEqual(r["confidence"], 0.3)
            text, _, msg = improve_stream(c)
            self.assertEqual(text, msg["result"]["improved_prompt"])
            self.assertEqual(msg["result"]["fallback_from"], "ollama")
            h = c.result("health")["llm"]
            self.assertEqual(h["fallback_provider"], "builtin")
            self.assertIn("ollama serve", h["last_error"])

    def test_first_byte_timeout_falls_back(self):
        with FakeLLM("ollama", fault="no_headers") as fake:
            with Daemon(config=cfg(fake, LLM_FALLBACK_PROVIDER="builtin",
                                   LLM_FIRST_BYTE_TIMEOUT_MS=300)) as d:
                r = d.call("improve", {"idea": IDEA})["result"]
                self.assertEqual((r["provider"], r["fallback_from"]), ("builtin", "ollama"))

    def test_missing_api_key_falls_back(self):
        with Daemon(config=cfg(LLM_PROVIDER="openai", LLM_FALLBACK_PROVIDER="builtin")) as d:
            r = d.call("improve", {"idea": IDEA})["result"]
            self.assertEqual((r["provider"], r["fallback_from"]), ("builtin", "openai"))
            self.assertIn("OPENAI_API_KEY", r["fallback_reason"])

    def test_missing_api_key_without_fallback_says_which_key(self):
        with Daemon(config=cfg(LLM_PROVIDER="anthropic")) as d:
            e = error_of(d.call("improve", {"idea": IDEA}))
            self.assertEqual(e["code"], -32000)
            self.assertIn("ANTHROPIC_API_KEY", e["message"])

    def test_bad_output_does_not_fall_back(self):
        with FakeLLM("ollama", fault="prose_only") as fake:
            with Daemon(config=cfg(fake, LLM_FALLBACK_PROVIDER="builtin")) as d:
                self.assertEqual(error_of(d.call("improve", {"idea": IDEA}))["code"], -32003)


class Queue(unittest.TestCase):
    def test_overloaded_past_max_queued(self):
        with FakeLLM("ollama", delay_s=1.0) as fake:
            with Daemon(config=cfg(fake, MAX_CONCURRENT_REQUESTS=1, MAX_QUEUED_REQUESTS=2)) as d:
                c = d.client(timeout=30)
                ids = [c.request("improve", {"idea": "idea number %d here" % i}) for i in range(5)]
                codes = []
                for i in ids:
                    msg = c.response(i)
                    codes.append(msg["error"]["code"] if "error" in msg else 0)
                self.assertEqual(sorted(codes), [-32005, -32005, 0, 0, 0])
                self.assertEqual(codes[:3], [0, 0, 0])  # first come, first served
                # At most one upstream at a time, in arrival order.
                order = [r["body"]["messages"][1]["content"] for r in fake.requests()]
                self.assertEqual(len(order), 3)
                for n, text in enumerate(order):
                    self.assertIn("idea number %d here" % n, text)

    def test_cancel_a_queued_request_never_reaches_upstream(self):
        with FakeLLM("ollama", delay_s=0.8) as fake:
            with Daemon(config=cfg(fake, MAX_CONCURRENT_REQUESTS=1)) as d:
                c = d.client(timeout=30)
                first = c.request("improve", {"idea": "the first idea here"})
                second = c.request("improve", {"idea": "the second idea here"})
                fake.wait_requests(1)
                cid = c.request("cancel", {"request_id": second})
                self.assertEqual(c.response(cid)["result"], {"cancelled": True})
                self.assertEqual(error_of(c.response(second))["code"], -32800)
                self.assertNotIn("error", c.response(first))
                time.sleep(0.2)
                self.assertEqual(len(fake.requests()), 1)

    def test_connections_are_kept_across_bursts(self):
        fake = FakeLLMProcess("ollama")
        try:
            with Daemon(config=cfg(fake, MAX_CONCURRENT_REQUESTS=16)) as d:
                c = d.client(timeout=30)
                for _ in range(3):
                    ids = [c.request("improve", {"idea": IDEA}) for _ in range(16)]
                    for i in ids:
                        self.assertNotIn("error", c.response(i))
                    time.sleep(0.1)
                # One connection per concurrent request, reused by the next bursts.
                self.assertLessEqual(fake.stats()["accepted"], 16 + 2)
                self.assertEqual(fake.stats()["requests"], 48)
        finally:
            fake.stop()

    def test_200_concurrent_improves_while_ping_answers(self):
        n = 200
        # The fake runs in its own process: its 200 threads must not share
        # this process's interpreter lock with the ping timing.
        fake = FakeLLMProcess("ollama")
        try:
            fake.configure(delay_s=1.0)
            self.run_200(fake, n)
        finally:
            fake.stop()

    def run_200(self, fake, n):
        with Daemon(config=cfg(fake, MAX_CONCURRENT_REQUESTS=256)) as d:
            clients = [d.client(timeout=60) for _ in range(20)]
            pending = []
            for i in range(n):
                c = clients[i % len(clients)]
                pending.append((c, c.request("improve", {"idea": "concurrent idea %d" % i})))
            # Meanwhile the loop answers ping at once.
            p = d.client()
            worst = 0.0
            t_end = time.monotonic() + 0.8
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                self.assertEqual(p.call("ping")["result"], "pong")
                worst = max(worst, time.monotonic() - t0)
                time.sleep(0.01)
            # A benchmark measures the real figure (tests/bench); this only
            # proves the loop is not blocked by the upstream calls.
            self.assertLess(worst, 0.5, "ping took %.3f s while improves waited" % worst)
            t0 = time.monotonic()
            for c, rid in pending:
                msg = c.response(rid)
                self.assertNotIn("error", msg, msg)
                self.assertEqual(msg["result"]["improved_prompt"],
                                 DEFAULT_RESULT["improved_prompt"])
            # All upstream at once: the whole batch took about one delay.
            self.assertLess(time.monotonic() - t0, 8)
            self.assertEqual(fake.stats()["requests"], n)
            h = p.result("health")
            self.assertEqual(h["llm"]["in_flight"], 0)
            self.assertEqual(h["llm"]["queued"], 0)
            for c in clients + [p]:
                c.close()


class OllamaOptions(unittest.TestCase):
    def test_keep_alive_num_ctx_and_prewarm(self):
        with FakeLLM("ollama") as fake:
            with Daemon(config=cfg(fake, LLM_PREWARM="true", LLM_KEEP_ALIVE="30m",
                                   LLM_NUM_CTX=8192, LLM_MODEL="qwen2.5:7b")) as d:
                reqs = fake.wait_requests(1)
                self.assertEqual(reqs[0]["path"], "/api/generate")
                self.assertEqual(reqs[0]["body"]["model"], "qwen2.5:7b")
                self.assertEqual(reqs[0]["body"]["keep_alive"], "30m")
                r = d.call("improve", {"idea": IDEA})["result"]
                self.assertEqual(r["model"], "qwen2.5:7b")
                body = fake.requests()[-1]["body"]
                self.assertEqual(body["keep_alive"], "30m")
                self.assertEqual(body["options"]["num_ctx"], 8192)
                self.assertIs(body["stream"], False)

    def test_numeric_keep_alive_is_a_number(self):
        with FakeLLM("ollama") as fake:
            with Daemon(config=cfg(fake, LLM_KEEP_ALIVE="-1")) as d:
                d.call("improve", {"idea": IDEA})
                self.assertEqual(fake.requests()[-1]["body"]["keep_alive"], -1)

    def test_ollama_host_is_the_base_url(self):
        with FakeLLM("ollama") as fake:
            c = dict(BASE, OLLAMA_HOST="127.0.0.1:%d" % fake.port)
            with Daemon(config=c) as d:
                self.assertNotIn("error", d.call("improve", {"idea": IDEA}))
                h = d.call("health")["result"]["llm"]
                self.assertEqual(h["base_url"], "http://127.0.0.1:%d" % fake.port)

    def test_request_model_overrides_the_configured_one(self):
        with FakeLLM("ollama") as fake:
            with Daemon(config=cfg(fake)) as d:
                r = d.call("improve", {"idea": IDEA, "model": "qwen2.5:7b"})["result"]
                self.assertEqual(r["model"], "qwen2.5:7b")
                self.assertEqual(fake.requests()[-1]["body"]["model"], "qwen2.5:7b")

    def test_a_model_without_thinking_is_asked_again_without_think(self):
        """Ollama refuses `think` for models that cannot think: a tiny server
        that does the same."""
        seen = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(body)
                if "think" in body:
                    out, code = {"error": "\"llama3.2:3b\" does not support thinking"}, 400
                else:
                    out, code = {"message": {"role": "assistant",
                                             "content": json.dumps(DEFAULT_RESULT)},
                                 "done": True, "done_reason": "stop"}, 200
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            url = "http://127.0.0.1:%d" % srv.server_address[1]
            with Daemon(config=cfg(LLM_BASE_URL=url)) as d:
                for _ in range(2):
                    r = d.call("improve", {"idea": IDEA})
                    self.assertNotIn("error", r, r)
            # First request: with think, then without; the second remembers.
            self.assertEqual(["think" in b for b in seen], [True, False, False])
        finally:
            srv.shutdown()
            srv.server_close()


class Health(unittest.TestCase):
    def test_health_llm_never_shows_credentials(self):
        with FakeLLM("openai") as fake:
            url = "http://user:s3cret@127.0.0.1:%d/v1?token=abc" % fake.port
            with Daemon(config=cfg(LLM_PROVIDER="openai", LLM_BASE_URL=url,
                                   OPENAI_API_KEY="sk-secret-key")) as d:
                h = d.call("health")["result"]["llm"]
                text = json.dumps(h)
                for secret in ("s3cret", "sk-secret-key", "token=abc"):
                    self.assertNotIn(secret, text)
                self.assertEqual(h["base_url"], "http://127.0.0.1:%d/v1" % fake.port)
                self.assertEqual(h["model"], "gpt-4o-mini")
                self.assertIsNone(h["last_error"])


class History(unittest.TestCase):
    """improve records its result (asynchronously, but readable at once),
    record=false keeps it out, parent_id refines an earlier row."""

    def test_record_and_refine(self):
        with FakeLLM("ollama") as fake:
            c = dict(BASE, SQLITE_ENABLED="true", LLM_BASE_URL=fake.url)
            with Daemon(config=c) as d:
                cl = d.client()
                r = cl.result("improve", {"idea": IDEA, "context": "ctx", "client": "tests"})
                self.assertIsInstance(r["id"], int)
                row = cl.result("history.get", {"id": r["id"]})
                self.assertEqual(row["improved_prompt"], r["improved_prompt"])
                self.assertEqual(row["original_idea"], IDEA)
                self.assertEqual(row["provider"], "ollama")
                self.assertEqual(row["client"], "tests")
                off = cl.result("improve", {"idea": IDEA, "record": False})
                self.assertIsNone(off["id"])
                child = cl.result("improve", {"idea": "make it shorter", "parent_id": r["id"]})
                self.assertEqual(child["parent_id"], r["id"])
                sent = json.dumps(fake.requests()[-1]["body"])
                self.assertIn(json.dumps(r["improved_prompt"])[1:-1], sent)
                e = error_of(cl.call("improve", {"idea": IDEA, "parent_id": 999999}))
                self.assertEqual(e["code"], -32004)
                self.assertEqual(e["data"]["field"], "parent_id")
                cl.close()

    def test_parent_id_without_history(self):
        with Daemon(config=cfg(LLM_PROVIDER="builtin")) as d:
            e = error_of(d.call("improve", {"idea": IDEA, "parent_id": 1}))
            self.assertEqual(e["data"]["field"], "parent_id")


class Lifecycle(unittest.TestCase):
    def test_sigterm_with_requests_in_flight_exits_cleanly(self):
        with FakeLLM("ollama", fault="no_headers") as fake:
            d = Daemon(config=cfg(fake)).start()
            try:
                c = d.client(timeout=30)
                ids = [c.request("improve", {"idea": IDEA, "stream": True}) for _ in range(3)]
                fake.wait_requests(3)
                d.proc.send_signal(signal.SIGTERM)
                for i in ids:
                    msg = c.response(i)
                    self.assertEqual(error_of(msg)["code"], -32800)
                self.assertEqual(d.stop(), 0)
                self.assertIsNotNone(fake.wait_event("client_disconnected", 5))
            finally:
                d.cleanup()

    def test_cancel_of_an_unknown_request(self):
        with Daemon(config=cfg(LLM_PROVIDER="builtin")) as d:
            self.assertEqual(d.call("cancel", {"request_id": 999})["result"], {"cancelled": False})


if __name__ == "__main__":
    unittest.main()
