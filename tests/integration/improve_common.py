"""Shared `improve` integration tests, run once per provider by
test_improve_<provider>.py: the real daemon against tests/fakes/fake_llm.py
speaking that provider's wire format, with every fault the fake offers.

Each provider module subclasses ProviderTests with PROVIDER and KEY_NAME.
Two daemons per class: `daemon` with the default timeouts, `fast` with a
short first-byte wait and generation deadline for the timeout faults."""
import json
import os
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from fake_llm import DEFAULT_RESULT, DEFAULT_MODELS, PROSE, FakeLLM  # noqa: E402
from harness import Daemon  # noqa: E402

IDEA = "email my landlord about the broken heater"
API_KEY = "k-test-123"
FAST_FIRST_BYTE_MS = 1500
FAST_DEADLINE_MS = 600
# The daemon's default model per provider (llm_<provider>.c).
DEFAULT_MODEL = {"ollama": "llama3.2:3b", "openai": "gpt-4o-mini",
                 "anthropic": "claude-3-5-haiku-latest", "gemini": "gemini-2.0-flash"}


def free_port():
    """A port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def improve(c, **params):
    """One improve call; returns the whole response message."""
    params.setdefault("idea", IDEA)
    return c.call("improve", params)


def improve_stream(client, **params):
    """A streamed improve: (concatenated delta text, deltas, response)."""
    params.setdefault("idea", IDEA)
    params["stream"] = True
    rid = client.request("improve", params)
    deltas = []
    while True:
        msg = client.recv()
        if msg is None:
            raise ConnectionError("connection closed before the response")
        if "id" not in msg:
            assert msg["method"] == "improve.delta", msg
            assert msg["params"]["request_id"] == rid, msg
            deltas.append(msg["params"]["text"])
            continue
        if msg["id"] == rid:
            return "".join(deltas), deltas, msg


def error_of(msg):
    assert "error" in msg, "expected an error, got %r" % (msg,)
    return msg["error"]


class ProviderTests:
    """Mixin: a unittest.TestCase subclass sets PROVIDER and KEY_NAME."""

    PROVIDER = None
    KEY_NAME = None  # config key of the provider's API key, None for none

    @classmethod
    def config(cls, **extra):
        cfg = {
            "LLM_PROVIDER": cls.PROVIDER,
            "LLM_BASE_URL": cls.fake.url,
            "SQLITE_ENABLED": "false",
            "LOG_LEVEL": "warn",
        }
        if cls.KEY_NAME:
            cfg[cls.KEY_NAME] = API_KEY
        cfg.update(extra)
        return cfg

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM(cls.PROVIDER).start()
        cls.daemon = Daemon(config=cls.config()).start()
        cls.fast = Daemon(config=cls.config(LLM_FIRST_BYTE_TIMEOUT_MS=FAST_FIRST_BYTE_MS,
                                            MAX_LATENCY_MS=FAST_DEADLINE_MS)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            for d in (cls.daemon, cls.fast):
                code = d.stop()
                d.cleanup()
                assert code == 0, "promptd exited %s" % code
        finally:
            cls.fake.stop()

    def setUp(self):
        self.fake.reset()
        self.configure()
        self.c = self.daemon.client(timeout=30)

    def tearDown(self):
        self.c.close()

    def configure(self, **kw):
        """fake.configure replaces the whole config: keep the key."""
        if self.KEY_NAME:
            kw.setdefault("api_key", API_KEY)
        self.fake.configure(**kw)

    def both_modes(self):
        return (False, True)

    def call_mode(self, stream, client=None, **params):
        """(text streamed, response) for either mode."""
        c = client or self.c
        if stream:
            text, _, msg = improve_stream(c, **params)
            return text, msg
        return "", improve(c, **params)

    def assert_default_result(self, msg):
        self.assertNotIn("error", msg, msg)
        r = msg["result"]
        for k in ("improved_prompt", "role", "directive", "framework", "guardrails",
                  "reasoning"):
            self.assertEqual(r[k], DEFAULT_RESULT[k], k)
        return r

    # ---- the normal path ----

    def test_result_has_every_field(self):
        msg = improve(self.c, context="third time this winter", client="tests")
        r = self.assert_default_result(msg)
        self.assertEqual(r["confidence"], DEFAULT_RESULT["confidence"])
        self.assertEqual(r["provider"], self.PROVIDER)
        self.assertEqual(r["model"], self.default_model())
        self.assertEqual(r["backend"], "zero-shot")
        self.assertIsNone(r["id"])  # persistence is off in these daemons
        self.assertIsNone(r["parent_id"])
        self.assertIsInstance(r["latency_ms"], int)
        self.assertGreaterEqual(r["latency_ms"], 0)
        self.assertGreater(r["tokens"]["prompt"], 0)
        self.assertGreater(r["tokens"]["completion"], 0)
        expect_q = max(0.0, min(1.0, 0.82 - min(r["latency_ms"] / 10000, 0.3)))
        self.assertAlmostEqual(r["quality_score"], expect_q, places=3)
        self.assertNotIn("fallback_from", r)

    def default_model(self):
        return DEFAULT_MODEL[self.PROVIDER]

    def test_stream_deltas_concatenate_to_the_improved_prompt(self):
        text, deltas, msg = improve_stream(self.c)
        r = self.assert_default_result(msg)
        self.assertGreater(len(deltas), 3)
        self.assertEqual(text, r["improved_prompt"])

    def test_stream_with_unicode_escapes_on_the_wire(self):
        self.configure(escape_unicode=True)
        text, _, msg = improve_stream(self.c)
        r = self.assert_default_result(msg)
        self.assertEqual(text, r["improved_prompt"])

    def test_request_uses_structured_output_and_the_key(self):
        improve(self.c, context="a toddler lives here")
        req = self.fake.requests()[-1]
        self.check_request(req)
        body = json.dumps(req["body"])
        self.assertIn("a toddler lives here", body)
        self.assertIn(IDEA, body)

    def test_connection_reused_across_requests(self):
        for _ in range(3):
            self.assert_default_result(improve(self.c))
        # At most one new TCP connection (none when an earlier test's
        # connection is still in curl's cache).
        self.assertEqual(self.fake.stats()["requests"], 3)
        self.assertLessEqual(self.fake.stats()["accepted"], 1)

    def test_models_lists_the_backend_models(self):
        r = self.c.result("models")
        self.assertEqual(r["provider"], self.PROVIDER)
        self.assertEqual(r["models"], DEFAULT_MODELS[self.PROVIDER])

    def test_health_shows_the_backend_never_the_key(self):
        h = self.c.result("health")["llm"]
        self.assertEqual(h["provider"], self.PROVIDER)
        self.assertEqual(h["base_url"], self.fake.url)
        self.assertNotIn(API_KEY, json.dumps(h))

    # ---- HTTP errors and retries ----

    def test_http_500_is_upstream_error_with_detail(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="http_500")
                _, msg = self.call_mode(stream)
                e = error_of(msg)
                self.assertEqual(e["code"], -32002)
                self.assertEqual(e["data"]["kind"], "upstream_error")
                self.assertEqual(e["data"]["http_status"], 500)
                self.assertTrue(e["data"]["detail"])
                self.assertIn("500", e["message"])

    def test_rate_limit_once_is_retried_after_retry_after(self):
        self.configure(fault="rate_limit_once")
        t0 = time.monotonic()
        self.assert_default_result(improve(self.c))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)  # Retry-After: 1
        self.assertEqual(len(self.fake.requests()), 2)

    def test_unavailable_once_is_retried(self):
        self.configure(fault="unavailable_once")
        text, msg = self.call_mode(True)
        r = self.assert_default_result(msg)
        self.assertEqual(text, r["improved_prompt"])
        self.assertEqual(len(self.fake.requests()), 2)

    def test_retry_never_goes_past_the_deadline(self):
        # Retry-After 1 s > MAX_LATENCY_MS 600: answer at once, no retry.
        self.configure(fault="rate_limit_once")
        c = self.fast.client()
        try:
            e = error_of(improve(c))
        finally:
            c.close()
        self.assertEqual(e["code"], -32002)
        self.assertEqual(e["data"]["http_status"], 429)
        self.assertEqual(len(self.fake.requests()), 1)

    def test_model_not_found(self):
        self.configure(fault="model_not_found")
        e = error_of(improve(self.c))
        self.assertEqual(e["code"], -32002)
        self.assertEqual(e["data"]["http_status"], 404)
        self.assertIn(self.default_model(), e["message"])
        self.check_model_not_found_message(e["message"])

    def check_model_not_found_message(self, message):
        pass

    def test_wrong_api_key_is_refused(self):
        if not self.KEY_NAME:
            self.skipTest("no key for this provider")
        self.configure(api_key="another-key")
        e = error_of(improve(self.c))
        self.assertEqual(e["code"], -32002)
        self.assertIn(e["data"]["http_status"], (400, 401, 403))
        self.assertNotIn(API_KEY, json.dumps(e))

    # ---- broken and strange answers ----

    def test_cut_mid_json_is_an_error_never_a_partial_result(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="cut_mid_json")
                _, msg = self.call_mode(stream)
                e = error_of(msg)
                self.assertIn(e["code"], (-32002, -32003))
                self.assertNotIn("result", msg)

    def test_reset_mid_stream_is_an_error(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="reset_mid_stream")
                _, msg = self.call_mode(stream)
                self.assertEqual(error_of(msg)["code"], -32002)
        self.assertEqual(self.c.call("ping")["result"], "pong")

    def test_error_inside_the_stream_after_200(self):
        self.configure(fault="stream_error")
        _, _, msg = improve_stream(self.c)
        e = error_of(msg)
        self.assertEqual(e["code"], -32002)
        self.assertTrue(e["data"]["detail"])

    def test_code_fences_are_repaired(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="code_fences")
                text, msg = self.call_mode(stream)
                r = self.assert_default_result(msg)
                if stream:
                    self.assertEqual(text, r["improved_prompt"])

    def test_prose_is_bad_model_output_with_its_start(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="prose_only")
                _, msg = self.call_mode(stream)
                e = error_of(msg)
                self.assertEqual(e["code"], -32003)
                self.assertEqual(e["data"]["kind"], "bad_model_output")
                self.assertEqual(e["data"]["detail"], PROSE[:200])

    def test_confidence_out_of_range_becomes_null(self):
        self.configure(fault="confidence_7")
        r = self.assert_default_result(improve(self.c))
        self.assertIsNone(r["confidence"])
        expect_q = max(0.0, 0.5 - min(r["latency_ms"] / 10000, 0.3))
        self.assertAlmostEqual(r["quality_score"], expect_q, places=3)

    def test_think_blocks_are_dropped(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="think")
                text, msg = self.call_mode(stream)
                r = self.assert_default_result(msg)
                if stream:
                    self.assertNotIn("WRONG", text)
                    self.assertEqual(text, r["improved_prompt"])

    def test_truncated_output_is_reported_as_truncated(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="truncated")
                _, msg = self.call_mode(stream)
                e = error_of(msg)
                self.assertEqual(e["code"], -32003)
                self.assertTrue(e["data"].get("truncated"), e)
                self.assertIn("truncated", e["message"])

    def test_invalid_utf8_from_the_model_becomes_replacement_characters(self):
        for stream in self.both_modes():
            with self.subTest(stream=stream):
                self.configure(fault="invalid_utf8")
                text, msg = self.call_mode(stream)
                self.assertNotIn("error", msg, msg)
                self.assertIn("\ufffd", msg["result"]["improved_prompt"])
                if stream:
                    self.assertEqual(text, msg["result"]["improved_prompt"])

    def test_huge_answer_is_cut_at_the_limit(self):
        self.configure(fault="huge")
        _, _, msg = improve_stream(self.c)
        e = error_of(msg)
        self.assertEqual(e["code"], -32003)
        self.assertEqual(self.c.call("ping")["result"], "pong")

    # ---- timeouts (the `fast` daemon) ----

    def fast_call(self, stream=False):
        c = self.fast.client(timeout=30)
        try:
            return self.call_mode(stream, client=c)
        finally:
            c.close()

    def test_no_headers_is_a_first_byte_timeout_and_the_upstream_closes(self):
        self.configure(fault="no_headers")
        t0 = time.monotonic()
        _, msg = self.fast_call()
        elapsed = time.monotonic() - t0
        e = error_of(msg)
        self.assertEqual(e["code"], -32001)
        self.assertIn("LLM_FIRST_BYTE_TIMEOUT_MS", e["message"])
        self.assertGreaterEqual(elapsed, FAST_FIRST_BYTE_MS / 1000 - 0.1)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))

    def test_a_slow_first_byte_within_its_own_timeout_succeeds(self):
        # A cold model load (900 ms) longer than MAX_LATENCY_MS (600 ms).
        self.configure(delay_s=0.9)
        _, msg = self.fast_call()
        self.assert_default_result(msg)

    def test_trickle_hits_the_generation_deadline(self):
        self.configure(fault="trickle")
        t0 = time.monotonic()
        _, msg = self.fast_call(stream=True)
        e = error_of(msg)
        self.assertEqual(e["code"], -32001)
        self.assertIn("MAX_LATENCY_MS", e["message"])
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))

    def test_never_ending_stream_hits_the_deadline(self):
        self.configure(fault="never_ending")
        text, msg = self.fast_call(stream=True)
        e = error_of(msg)
        self.assertEqual(e["code"], -32001)
        self.assertIn("and again", text)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))

    # ---- cancel and vanishing clients ----

    def test_cancel_aborts_the_upstream_transfer(self):
        self.configure(chunk_delay_s=0.2)
        rid = self.c.request("improve", {"idea": IDEA, "stream": True})
        first = self.c.recv()
        self.assertEqual(first["method"], "improve.delta")
        cid = self.c.request("cancel", {"request_id": rid})
        self.assertEqual(self.c.response(cid)["result"], {"cancelled": True})
        e = error_of(self.c.response(rid))
        self.assertEqual(e["code"], -32800)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))
        # Cancelling it again finds nothing.
        self.assertEqual(self.c.result("cancel", {"request_id": rid}), {"cancelled": False})

    def test_cancel_while_waiting_for_headers(self):
        self.configure(fault="no_headers")
        rid = self.c.request("improve", {"idea": IDEA})
        self.fake.wait_requests(1)
        cid = self.c.request("cancel", {"request_id": rid})
        self.assertEqual(self.c.response(cid)["result"], {"cancelled": True})
        self.assertEqual(error_of(self.c.response(rid))["code"], -32800)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))

    def test_client_disconnect_mid_stream_closes_the_upstream(self):
        self.configure(chunk_delay_s=0.2)
        c = self.daemon.client()
        c.request("improve", {"idea": IDEA, "stream": True})
        self.assertEqual(c.recv()["method"], "improve.delta")
        c.close()
        ev = self.fake.wait_event("client_disconnected", 5)
        self.assertIsNotNone(ev, self.fake.events())
        self.assertEqual(self.c.call("ping")["result"], "pong")

    def test_connection_refused_fails_at_once(self):
        cfg = self.config(LLM_BASE_URL="http://127.0.0.1:%d" % free_port())
        with Daemon(config=cfg) as d:
            t0 = time.monotonic()
            e = error_of(d.call("improve", {"idea": IDEA}))
            self.assertLess(time.monotonic() - t0, 2)
            self.assertEqual(e["code"], -32000)
            self.assertEqual(e["data"]["kind"], "upstream_unavailable")
            self.check_refused_message(e["message"])
            h = d.call("health")["result"]["llm"]
            self.assertEqual(h["last_error"], e["message"])
            self.assertRegex(h["last_error_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def check_refused_message(self, message):
        self.assertIn("127.0.0.1", message)
