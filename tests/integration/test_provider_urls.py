"""Every provider reachable in one daemon (issue 13): each has its own base
URL variable (OLLAMA_HOST, OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
GEMINI_BASE_URL), a local (loopback) base URL needs no key, and health and
models show each configured provider. Also the first-run message: Ollama
not running names the providers that answer without it."""
import json
import subprocess
import unittest

from improve_common import (API_KEY, DEFAULT_MODELS, IDEA, FakeLLM, error_of, free_port,
                            improve)
from harness import Daemon, promptctl

BASE = {"SQLITE_ENABLED": "false", "LOG_LEVEL": "warn"}


def cfg(**kw):
    c = dict(BASE)
    c.update({k: str(v) for k, v in kw.items()})
    return c


def check_config(**kw):
    """promptd --check-config with this config file: CompletedProcess."""
    d = Daemon(config=cfg(**kw), args=["--check-config"])
    try:
        return subprocess.run(d.command(), env=d.env, capture_output=True, text=True, timeout=30)
    finally:
        d.cleanup()


def host_of(fake):
    return fake.url[len("http://"):]


class OneDaemonManyProviders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ollama = FakeLLM("ollama").start()
        cls.openai = FakeLLM("openai").start()  # a local OpenAI-compatible server, no key
        cls.daemon = Daemon(config=cfg(LLM_PROVIDER="ollama", OLLAMA_HOST=host_of(cls.ollama),
                                       OPENAI_BASE_URL=cls.openai.url)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.daemon.stop()
            cls.daemon.cleanup()
            assert code == 0, "promptd exited %s" % code
        finally:
            cls.ollama.stop()
            cls.openai.stop()

    def setUp(self):
        self.ollama.reset()
        self.openai.reset()
        self.c = self.daemon.client(timeout=30)

    def tearDown(self):
        self.c.close()

    def test_alternating_requests_reach_each_server(self):
        for i in range(4):
            provider = "ollama" if i % 2 == 0 else "openai"
            msg = improve(self.c, provider=provider)
            self.assertIn("result", msg, msg)
            self.assertEqual(msg["result"]["provider"], provider)
        self.assertEqual(self.ollama.stats()["requests"], 2)
        self.assertEqual(self.openai.stats()["requests"], 2)
        self.assertEqual({r["route_path"] for r in self.ollama.requests()}, {"/api/chat"})
        self.assertEqual({r["route_path"] for r in self.openai.requests()},
                         {"/v1/chat/completions"})

    def test_loopback_openai_needs_no_key_and_gets_none(self):
        msg = improve(self.c, provider="openai")
        self.assertIn("result", msg, msg)
        self.assertNotIn("authorization", self.openai.requests()[0]["headers"])

    def test_health_lists_each_configured_provider(self):
        h = self.c.result("health")["llm"]
        # The primary's fields stay as they were.
        self.assertEqual(h["provider"], "ollama")
        self.assertEqual(h["base_url"], self.ollama.url)
        by_name = {p["provider"]: p for p in h["providers"]}
        self.assertEqual(list(by_name), ["ollama", "openai"])
        self.assertEqual(by_name["ollama"]["base_url"], self.ollama.url)
        self.assertEqual(by_name["openai"]["base_url"], self.openai.url)
        self.assertEqual(by_name["openai"]["model"], "gpt-4o-mini")

    def test_models_lists_each_configured_provider(self):
        r = self.c.result("models")
        self.assertEqual(r["provider"], "ollama")
        self.assertEqual(r["models"], DEFAULT_MODELS["ollama"])
        by_name = {p["provider"]: p for p in r["providers"]}
        self.assertEqual(list(by_name), ["ollama", "openai"])
        self.assertEqual(by_name["ollama"]["models"], DEFAULT_MODELS["ollama"])
        self.assertEqual(by_name["openai"]["models"], DEFAULT_MODELS["openai"])
        self.assertEqual(by_name["openai"]["base_url"], self.openai.url)

    def test_models_for_one_provider_is_as_before(self):
        r = self.c.result("models", {"provider": "openai"})
        self.assertEqual(r, {"provider": "openai", "models": DEFAULT_MODELS["openai"]})

    def test_config_get_shows_the_base_urls(self):
        c = self.c.result("config.get")
        self.assertEqual(c["OPENAI_BASE_URL"], self.openai.url)
        self.assertEqual(c["OLLAMA_HOST"], host_of(self.ollama))
        self.assertIsNone(c["ANTHROPIC_BASE_URL"])
        self.assertIsNone(c["GEMINI_BASE_URL"])


class ProviderBaseUrls(unittest.TestCase):
    def test_each_cloud_provider_has_its_own_base_url_variable(self):
        for provider, var, key in (("anthropic", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
                                   ("gemini", "GEMINI_BASE_URL", "GEMINI_API_KEY")):
            with self.subTest(provider=provider), FakeLLM(provider, api_key=API_KEY) as fake, \
                    Daemon(config=cfg(LLM_PROVIDER="ollama", **{var: fake.url, key: API_KEY})) as d:
                c = d.client(timeout=30)
                msg = improve(c, provider=provider)
                self.assertIn("result", msg, msg)
                self.assertEqual(fake.stats()["requests"], 1)

    def test_a_secondary_provider_never_gets_llm_api_key(self):
        with FakeLLM("openai") as fake, \
                Daemon(config=cfg(LLM_PROVIDER="ollama", LLM_API_KEY="generic-secret",
                                  OPENAI_BASE_URL=fake.url)) as d:
            msg = improve(d.client(timeout=30), provider="openai")
            self.assertIn("result", msg, msg)
            self.assertNotIn("authorization", fake.requests()[0]["headers"])

    def test_llm_base_url_still_wins_for_llm_provider(self):
        with FakeLLM("openai") as fake, \
                Daemon(config=cfg(LLM_PROVIDER="openai", LLM_BASE_URL=fake.url,
                                  OPENAI_BASE_URL="http://127.0.0.1:%d" % free_port())) as d:
            msg = improve(d.client(timeout=30))
            self.assertIn("result", msg, msg)

    def test_unreachable_names_the_variable_it_came_from(self):
        port = free_port()
        with Daemon(config=cfg(LLM_PROVIDER="ollama",
                               OPENAI_BASE_URL="http://u:pw-secret@127.0.0.1:%d" % port)) as d:
            e = error_of(improve(d.client(), provider="openai"))
            self.assertEqual(e["code"], -32000)
            self.assertIn("OPENAI_BASE_URL", e["message"])
            self.assertNotIn("LLM_BASE_URL", e["message"])
            self.assertIn("http://127.0.0.1:%d" % port, e["message"])
            self.assertNotIn("pw-secret", json.dumps(e) + d.log())

    def test_base_url_var_must_be_a_url(self):
        r = check_config(OPENAI_BASE_URL="localhost:1234")
        self.assertEqual(r.returncode, 2)
        self.assertIn("OPENAI_BASE_URL", r.stderr)
        self.assertIn("http://", r.stderr)

    def test_credentials_in_a_base_url_never_show(self):
        with FakeLLM("openai") as fake:
            url = fake.url.replace("http://", "http://user:pw-secret@")
            with Daemon(config=cfg(OPENAI_BASE_URL=url)) as d:
                h = d.client().result("health")["llm"]
                self.assertNotIn("pw-secret", json.dumps(h))
                openai = [p for p in h["providers"] if p["provider"] == "openai"][0]
                self.assertEqual(openai["base_url"], fake.url)
                c = d.client().result("config.get")
                self.assertEqual(c["OPENAI_BASE_URL"], fake.url)
                r = d.client().result("models", {"provider": "openai"})
                self.assertEqual(r["models"], DEFAULT_MODELS["openai"])
                e = error_of(improve(d.client(), provider="anthropic"))  # no key: names no URL
                self.assertNotIn("pw-secret", json.dumps(e))
                self.assertNotIn("pw-secret", d.log())

    def test_a_single_provider_keeps_the_models_result_as_it_was(self):
        with FakeLLM("ollama") as fake, \
                Daemon(config=cfg(LLM_PROVIDER="ollama", LLM_BASE_URL=fake.url)) as d:
            r = d.client().result("models")
            self.assertEqual(r, {"provider": "ollama", "models": DEFAULT_MODELS["ollama"]})


class FirstRunMessage(unittest.TestCase):
    def test_ollama_not_running_names_the_alternatives(self):
        port = free_port()
        with Daemon(config=cfg(LLM_BASE_URL="http://127.0.0.1:%d" % port)) as d:
            e = error_of(improve(d.client(), idea=IDEA))
            m = e["message"]
            self.assertTrue(m.startswith("Ollama is not running at http://127.0.0.1:%d: start it "
                                         "with `ollama serve` (or set OLLAMA_HOST / LLM_BASE_URL "
                                         "to where it runs)" % port), m)
            self.assertIn("--provider builtin", m)
            for name in ("openai", "anthropic", "gemini", "LLM_FALLBACK_PROVIDER=builtin"):
                self.assertIn(name, m)
            r = promptctl(["--socket", d.socket, "improve", IDEA], env=d.env)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("--provider builtin", r.stderr)

    def test_no_alternatives_clause_when_a_fallback_is_configured(self):
        port = free_port()
        with Daemon(config=cfg(LLM_BASE_URL="http://127.0.0.1:%d" % port,
                               LLM_FALLBACK_PROVIDER="builtin")) as d:
            r = d.client().result("improve", {"idea": IDEA})
            self.assertEqual(r["provider"], "builtin")
            self.assertIn("ollama serve", r["fallback_reason"])
            self.assertNotIn("LLM_FALLBACK_PROVIDER", r["fallback_reason"])


class HiddenTestKeys(unittest.TestCase):
    def test_test_only_keys_are_not_in_config_get_or_check_config(self):
        with Daemon(config=cfg(PROMPTD_TEST_CIRCUIT_PAUSE_MS=300)) as d:
            c = d.client().result("config.get")
            self.assertFalse([k for k in c if k.startswith("PROMPTD_TEST_")], c)
            self.assertIn("MAX_QUEUE_WAIT_MS", c)
        r = check_config(PROMPTD_TEST_MAX_PAGE_COUNT=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = json.loads(r.stdout)
        self.assertNotIn("PROMPTD_TEST_MAX_PAGE_COUNT", shown)
        self.assertIn("OPENAI_BASE_URL", shown)


if __name__ == "__main__":
    unittest.main()
