"""promptctl improve and promptctl models against a real daemon and the
Ollama fake: idea from arguments or stdin, context, --json, --provider,
--copy, errors, a terminal (streaming, then the details), Ctrl-C."""
import json
import os
import pty
import select
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from improve_common import IDEA
from fake_llm import DEFAULT_RESULT, DEFAULT_MODELS, FakeLLM
from harness import PROMPTCTL, Daemon, base_env, promptctl

PROMPT = DEFAULT_RESULT["improved_prompt"]


class PromptctlImprove(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()
        cls.d = Daemon(config={"LLM_BASE_URL": cls.fake.url, "SQLITE_ENABLED": "false",
                               "LOG_LEVEL": "warn"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()

    def ctl(self, *args, input=None, env=None):
        e = dict(self.d.env)
        e.update(env or {})
        return promptctl(["--socket", self.d.socket] + list(args), env=e, input=input)

    def test_idea_from_arguments_prints_the_prompt(self):
        r = self.ctl("improve", "email", "my", "landlord", "about", "the", "heater")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, PROMPT + "\n")
        body = json.dumps(self.fake.requests()[-1]["body"])
        self.assertIn("email my landlord about the heater", body)

    def test_options_after_the_idea(self):
        # Regression: options after the idea were taken as words of the idea.
        r = self.ctl("improve", "email my landlord", "-c", "third time this winter", "--json",
                     "--no-stream")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["improved_prompt"], PROMPT)
        body = json.dumps(self.fake.requests()[-1]["body"])
        self.assertIn("email my landlord", body)
        self.assertIn("third time this winter", body)
        self.assertNotIn("-c third time", body)

    def test_idea_from_stdin_with_context(self):
        for args in (["improve", "-", "-c", "a toddler lives here"],
                     ["improve", "--context", "a toddler lives here"]):
            with self.subTest(args=args):
                r = self.ctl(*args, input=IDEA + "\n")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, PROMPT + "\n")
                body = json.dumps(self.fake.requests()[-1]["body"])
                self.assertIn(IDEA, body)
                self.assertIn("a toddler lives here", body)

    def test_json_prints_the_whole_result(self):
        r = self.ctl("improve", "--json", IDEA)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res["improved_prompt"], PROMPT)
        self.assertEqual(res["provider"], "ollama")
        self.assertEqual(res["guardrails"], DEFAULT_RESULT["guardrails"])

    def test_provider_and_model(self):
        r = self.ctl("improve", "--json", "--provider", "builtin", IDEA)
        self.assertEqual(json.loads(r.stdout)["provider"], "builtin")
        r = self.ctl("improve", "--json", "--model", "qwen2.5:7b", IDEA)
        self.assertEqual(json.loads(r.stdout)["model"], "qwen2.5:7b")
        self.assertEqual(self.fake.requests()[-1]["body"]["model"], "qwen2.5:7b")

    def test_errors_exit_1_with_the_daemons_sentence(self):
        r = self.ctl("improve", "abc")
        self.assertEqual(r.returncode, 1)
        self.assertIn("idea", r.stderr)
        self.fake.configure(fault="model_not_found")
        r = self.ctl("improve", IDEA)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ollama pull", r.stderr)
        r = self.ctl("improve", "--bogus", IDEA)
        self.assertEqual(r.returncode, 2)

    def test_models(self):
        r = self.ctl("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), DEFAULT_MODELS["ollama"])
        r = self.ctl("models", "--json")
        self.assertEqual(json.loads(r.stdout)["models"], DEFAULT_MODELS["ollama"])
        r = self.ctl("models", "--provider", "builtin")
        self.assertEqual(r.stdout.split(), ["builtin"])

    def test_copy_uses_a_clipboard_tool(self):
        with tempfile.TemporaryDirectory() as bin_dir:
            out = os.path.join(bin_dir, "clip.txt")
            tool = os.path.join(bin_dir, "xclip")
            with open(tool, "w") as f:
                f.write("#!/bin/sh\ncat > %s\n" % out)
            os.chmod(tool, stat.S_IRWXU)
            env = {"PATH": bin_dir + ":" + os.environ.get("PATH", ""), "DISPLAY": ":99"}
            r = self.ctl("improve", "--copy", IDEA, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                self.assertEqual(f.read(), PROMPT)
            self.assertIn("clipboard", r.stderr)

    def test_copy_without_a_tool_says_what_to_install(self):
        with tempfile.TemporaryDirectory() as empty:
            r = self.ctl("improve", "--copy", IDEA,
                         env={"PATH": empty, "DISPLAY": "", "WAYLAND_DISPLAY": ""})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, PROMPT + "\n")  # the prompt is still printed
        self.assertIn("xclip", r.stderr)

    def run_in_terminal(self, args, on_output=None, timeout=20):
        """Runs promptctl on a pseudo-terminal; returns (exit status, output)."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(PROMPTCTL, [PROMPTCTL, "--socket", self.d.socket] + args, self.d.env)
        out = b""
        deadline = time.monotonic() + timeout
        fired = False
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if on_output and not fired and on_output(out, pid):
                    fired = True
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")

    def test_terminal_streams_then_prints_the_details(self):
        self.fake.configure(chunk_delay_s=0.01)
        code, out = self.run_in_terminal(["improve", IDEA])
        self.assertEqual(code, 0, out)
        text = out.replace("\r\n", "\n")
        self.assertIn(PROMPT, text)
        for label in ("role:", "directive:", "framework:", "guardrails:", "confidence: 0.82",
                      "latency:"):
            self.assertIn(label, text)
        self.assertTrue(self.fake.requests()[-1]["body"]["stream"])

    def test_ctrl_c_cancels_the_request(self):
        self.fake.configure(chunk_delay_s=0.3)

        def interrupt(out, pid):
            if len(out) > 5:
                os.kill(pid, signal.SIGINT)
                return True
            return False

        code, out = self.run_in_terminal(["improve", IDEA], on_output=interrupt)
        self.assertEqual(code, 130, out)
        self.assertIn("cancel", out)
        self.assertIsNotNone(self.fake.wait_event("client_disconnected", 5))

    def test_not_running_exits_3(self):
        with tempfile.TemporaryDirectory(prefix="pd-") as home:
            r = promptctl(["--socket", os.path.join(home, "nothing.sock"), "improve", IDEA],
                          env=base_env(home))
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    unittest.main()
