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
from harness import SLOW, Client, Daemon, wait_for  # noqa: E402
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


if __name__ == "__main__":
    unittest.main()
