"""Few-shot mode against the fake Ollama: the FEWSHOT_K most similar
examples reach the model's user message in order, `backend` says
"few-shot" in the result and the history, FEWSHOT_ENABLED makes it the
default, zero-shot stays zero-shot, builtin (asked for or as the fallback)
reports zero-shot, a missing trainset is -32602, a bad one is a start-up
error (exit 2) naming the file and the line, and SIGHUP reloads it (a bad
new one keeps the old). docs/fewshot.md describes the behaviour."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from improve_common import DEFAULT_RESULT, error_of, free_port, improve_stream
from fake_llm import FakeLLM
from harness import PROMPTD, Daemon, base_env, promptctl, wait_for

IDEA = "email my landlord about the heater"

# Each example's improved_prompt is a marker easy to find in the request.
EXAMPLES = [
    {"idea": "write a haiku about autumn rain", "improved_prompt": "EX0 haiku",
     "role": "Poet", "framework": "RTF"},
    {"idea": "email my landlord about the broken heater", "improved_prompt": "EX1 heater",
     "role": "Tenant", "directive": "Write the email.", "framework": "CO-STAR",
     "guardrails": ["Under 200 words", "No threats"], "reasoning": "Added a deadline."},
    {"idea": "debug my python script that crashes on startup", "improved_prompt": "EX2 debug"},
    {"original_idea": "email the landlord again: heater still broken",
     "improved_prompt": "EX3 again", "context": "third time this winter", "source": "legacy"},
    {"idea": "plan a team offsite for twelve people", "improved_prompt": "EX4 offsite"},
    {"idea": "email my boss asking for a raise", "improved_prompt": "EX5 raise"},
]
# For IDEA: EX1 shares 3 of its 4 words, EX3 3 of 6, EX5 1 of 4; the rest none.
EXPECTED = ["EX1 heater", "EX3 again", "EX5 raise"]


def jsonl(examples, comment=True):
    lines = ["# examples for promptd's few-shot mode"] if comment else []
    lines += [json.dumps(e) for e in examples]
    return "\n".join(lines) + "\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def few_shot_daemon(fake, trainset_text, name="examples.jsonl", **extra):
    """A daemon whose config names the trainset by a path relative to the
    config file (the daemon's working directory is elsewhere)."""
    cfg = {"LLM_PROVIDER": "ollama", "LLM_BASE_URL": fake.url, "LOG_LEVEL": "info",
           "FEWSHOT_TRAINSET_PATH": name, "FEWSHOT_K": "3"}
    cfg.update({k: str(v) for k, v in extra.items()})
    d = Daemon(config=cfg)
    write(os.path.join(d.home, name), trainset_text)
    return d.start()


def user_message(fake):
    body = fake.requests()[-1]["body"]
    roles = [m["role"] for m in body["messages"]]
    return body["messages"][roles.index("user")]["content"]


def markers_in(message):
    """The example markers in the message, in the order they appear."""
    found = [(message.find(e["improved_prompt"]), e["improved_prompt"]) for e in EXAMPLES]
    return [m for pos, m in sorted(found) if pos >= 0]


class FewShot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()
        cls.d = few_shot_daemon(cls.fake, jsonl(EXAMPLES))

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.d.stop()
            cls.d.cleanup()
            assert code == 0, "promptd exited %s" % code
        finally:
            cls.fake.stop()

    def setUp(self):
        self.fake.reset()
        self.c = self.d.client(timeout=30)

    def tearDown(self):
        self.c.close()

    def test_the_k_most_similar_examples_precede_the_idea_in_order(self):
        r = self.c.result("improve", {"idea": IDEA, "mode": "few-shot"})
        self.assertEqual(r["improved_prompt"], DEFAULT_RESULT["improved_prompt"])
        self.assertEqual(r["backend"], "few-shot")
        m = user_message(self.fake)
        self.assertEqual(markers_in(m), EXPECTED)
        self.assertIn("not content to copy", m)
        self.assertLess(m.index("</examples>"), m.index("<idea>\n%s\n</idea>" % IDEA))
        # The example as the model sees it: its idea, then the answer object.
        self.assertIn("<idea>\nemail my landlord about the broken heater\n</idea>", m)
        self.assertIn('{"role":"Tenant","directive":"Write the email.","framework":"CO-STAR",'
                      '"guardrails":["Under 200 words","No threats"],"improved_prompt":'
                      '"EX1 heater","reasoning":"Added a deadline."}', m)
        # original_idea is the old name of idea; unknown keys are ignored.
        self.assertIn("<idea>\nemail the landlord again: heater still broken\n</idea>\n"
                      "<context>\nthird time this winter\n</context>", m)
        self.assertNotIn("legacy", m)
        # The system prompt is untouched: the examples live in the user message.
        self.assertNotIn("EX1 heater", self.fake.requests()[-1]["body"]["messages"][0]["content"])

    def test_backend_few_shot_is_recorded_in_the_history(self):
        r = self.c.result("improve", {"idea": IDEA, "mode": "few-shot", "client": "tests"})
        self.assertIsInstance(r["id"], int)
        row = self.c.result("history.get", {"id": r["id"]})
        self.assertEqual(row["backend"], "few-shot")
        listed = self.c.result("history.list", {"backend": "few-shot"})
        self.assertIn(r["id"], [item["id"] for item in listed["items"]])

    def test_promptctl_mode_few_shot(self):
        r = promptctl(["--socket", self.d.socket, "improve", "--json", "--mode", "few-shot", IDEA],
                      env=self.d.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["backend"], "few-shot")
        self.assertEqual(markers_in(user_message(self.fake)), EXPECTED)
        r = promptctl(["--socket", self.d.socket, "improve", "--json", "--mode", "zero-shot", IDEA],
                      env=self.d.env)
        self.assertEqual(json.loads(r.stdout)["backend"], "zero-shot")

    def test_the_context_counts_in_the_choice(self):
        self.c.result("improve", {"idea": "help me with something", "mode": "few-shot",
                                  "context": "my python script crashes"})
        self.assertEqual(markers_in(user_message(self.fake))[0], "EX2 debug")

    def test_the_same_request_picks_the_same_examples(self):
        for _ in range(3):
            self.c.result("improve", {"idea": IDEA, "mode": "few-shot", "record": False})
        messages = [r["body"]["messages"][1]["content"] for r in self.fake.requests()]
        self.assertEqual(len(set(messages)), 1)

    def test_streaming_few_shot(self):
        text, _, msg = improve_stream(self.c, idea=IDEA, mode="few-shot")
        self.assertEqual(msg["result"]["backend"], "few-shot")
        self.assertEqual(text, msg["result"]["improved_prompt"])
        self.assertEqual(markers_in(user_message(self.fake)), EXPECTED)

    def test_refining_in_few_shot_keeps_the_examples_and_the_earlier_prompt(self):
        first = self.c.result("improve", {"idea": IDEA})
        r = self.c.result("improve", {"idea": "make it shorter please", "mode": "few-shot",
                                      "parent_id": first["id"]})
        self.assertEqual(r["backend"], "few-shot")
        m = user_message(self.fake)
        self.assertIn("<examples>", m)
        self.assertIn("<earlier_prompt>", m)
        self.assertLess(m.index("</examples>"), m.index("<earlier_prompt>"))

    def test_zero_shot_explicit_or_by_default_sends_no_examples(self):
        for params in ({"mode": "zero-shot"}, {}):
            with self.subTest(params=params):
                r = self.c.result("improve", dict(params, idea=IDEA))
                self.assertEqual(r["backend"], "zero-shot")
                m = user_message(self.fake)
                self.assertNotIn("<examples>", m)
                self.assertEqual(markers_in(m), [])
                row = self.c.result("history.get", {"id": r["id"]})
                self.assertEqual(row["backend"], "zero-shot")

    def test_builtin_uses_no_examples_and_says_zero_shot(self):
        r = self.c.result("improve", {"idea": IDEA, "mode": "few-shot", "provider": "builtin"})
        self.assertEqual(r["provider"], "builtin")
        self.assertEqual(r["backend"], "zero-shot")
        self.assertEqual(self.c.result("history.get", {"id": r["id"]})["backend"], "zero-shot")
        self.assertEqual(self.fake.requests(), [])

    def test_history_rows_work_as_a_trainset(self):
        # docs/fewshot.md: an export of the history is a valid trainset.
        self.c.result("improve", {"idea": IDEA, "context": "third time"})
        items = self.c.result("history.list", {"limit": 5})["items"]
        home = tempfile.mkdtemp(prefix="pd-", dir="/tmp")
        try:
            path = os.path.join(home, "export.jsonl")
            write(path, "".join(json.dumps(row) + "\n" for row in items))
            p = subprocess.run([PROMPTD, "--check-config"], capture_output=True, text=True,
                               env=dict(base_env(home), FEWSHOT_TRAINSET_PATH=path), timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def test_unknown_mode_is_still_refused(self):
        e = error_of(self.c.call("improve", {"idea": IDEA, "mode": "one-shot"}))
        self.assertEqual(e["code"], -32602)
        self.assertEqual(e["data"]["field"], "mode")


class Defaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def test_fewshot_enabled_makes_few_shot_the_default_and_zero_shot_stays(self):
        # The old backend's name for the key, and a JSON array trainset.
        with few_shot_daemon(self.fake, json.dumps(EXAMPLES, indent=1), name="examples.json",
                             DSPY_FEWSHOT_ENABLED="true") as d:
            c = d.client(timeout=30)
            r = c.result("improve", {"idea": IDEA})
            self.assertEqual(r["backend"], "few-shot")
            self.assertEqual(markers_in(user_message(self.fake)), EXPECTED)
            r = c.result("improve", {"idea": IDEA, "mode": "zero-shot"})
            self.assertEqual(r["backend"], "zero-shot")
            self.assertNotIn("<examples>", user_message(self.fake))
            self.assertIn("few-shot: 6 examples from", d.log())
            c.close()

    def test_fewshot_k(self):
        with few_shot_daemon(self.fake, jsonl(EXAMPLES), FEWSHOT_K=1) as d:
            d.call("improve", {"idea": IDEA, "mode": "few-shot"})
            self.assertEqual(markers_in(user_message(self.fake)), EXPECTED[:1])

    def test_few_shot_without_a_trainset_is_invalid_params(self):
        with Daemon(config={"LLM_BASE_URL": self.fake.url, "LOG_LEVEL": "warn"}) as d:
            e = error_of(d.call("improve", {"idea": IDEA, "mode": "few-shot"}))
            self.assertEqual(e["code"], -32602)
            self.assertEqual(e["data"]["field"], "mode")
            self.assertIn("FEWSHOT_TRAINSET_PATH", e["message"])
            self.assertEqual(d.call("improve", {"idea": IDEA})["result"]["backend"], "zero-shot")

    def test_the_builtin_fallback_reports_zero_shot(self):
        cfg = {"LLM_BASE_URL": "http://127.0.0.1:%d" % free_port(),
               "LLM_FALLBACK_PROVIDER": "builtin", "FEWSHOT_ENABLED": "true",
               "FEWSHOT_TRAINSET_PATH": "examples.jsonl", "LOG_LEVEL": "error"}
        d = Daemon(config=cfg)
        write(os.path.join(d.home, "examples.jsonl"), jsonl(EXAMPLES))
        with d.start():
            r = d.call("improve", {"idea": IDEA})["result"]
            self.assertEqual(r["fallback_from"], "ollama")
            self.assertEqual(r["provider"], "builtin")
            self.assertEqual(r["backend"], "zero-shot")
            self.assertEqual(d.call("history.get", {"id": r["id"]})["result"]["backend"],
                             "zero-shot")


class StartUp(unittest.TestCase):
    """A bad trainset is a configuration error: exit 2, file and line named."""

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="pd-", dir="/tmp")
        self.env = base_env(self.home)
        self.conf = os.path.join(self.home, "promptd.conf")

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def run_promptd(self, config, *args):
        write(self.conf, config)
        os.chmod(self.conf, 0o600)
        return subprocess.run([PROMPTD, "--socket", os.path.join(self.home, "s.sock"),
                               "--config", self.conf] + list(args),
                              env=self.env, capture_output=True, text=True, timeout=30)

    def test_a_bad_example_stops_start_up_naming_file_line_and_field(self):
        bad = jsonl(EXAMPLES[:2]) + '{"idea": "a third idea here"}\n'
        write(os.path.join(self.home, "examples.jsonl"), bad)
        for args in ((), ("--check-config",)):
            with self.subTest(args=args):
                p = self.run_promptd("FEWSHOT_TRAINSET_PATH=examples.jsonl\n", *args)
                self.assertEqual(p.returncode, 2, p.stderr)
                path = os.path.join(self.home, "examples.jsonl")
                self.assertIn(path + ":4:", p.stderr)
                self.assertIn('"improved_prompt" is missing', p.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.home, "s.sock")))

    def test_a_bad_array_element_is_named_by_its_index(self):
        write(os.path.join(self.home, "t.json"),
              json.dumps(EXAMPLES[:2] + [{"idea": "a third idea", "improved_prompt": 7}]))
        p = self.run_promptd("FEWSHOT_TRAINSET_PATH=t.json\n")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("t.json, example [2]", p.stderr)
        self.assertIn('"improved_prompt" must be a string', p.stderr)

    def test_a_missing_file(self):
        p = self.run_promptd("FEWSHOT_TRAINSET_PATH=/nonexistent/examples.jsonl\n")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("cannot read the trainset /nonexistent/examples.jsonl", p.stderr)

    def test_enabled_without_a_path_says_to_set_it(self):
        for args in ((), ("--check-config",)):
            with self.subTest(args=args):
                p = self.run_promptd("FEWSHOT_ENABLED=true\n", *args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("FEWSHOT_TRAINSET_PATH is not set: set it", p.stderr)

    def test_check_config_accepts_a_good_trainset(self):
        write(os.path.join(self.home, "examples.jsonl"), jsonl(EXAMPLES))
        p = self.run_promptd("FEWSHOT_TRAINSET_PATH=examples.jsonl\nFEWSHOT_ENABLED=true\n",
                             "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["FEWSHOT_ENABLED"])


class Reload(unittest.TestCase):
    def test_sighup_rereads_the_trainset_and_keeps_the_old_one_when_the_new_is_bad(self):
        with FakeLLM("ollama") as fake, few_shot_daemon(fake, jsonl(EXAMPLES)) as d:
            path = os.path.join(d.home, "examples.jsonl")
            d.call("improve", {"idea": IDEA, "mode": "few-shot"})
            self.assertEqual(markers_in(user_message(fake)), EXPECTED)
            # The file changes; its path does not.
            renamed = [dict(e, improved_prompt="NEW " + e["improved_prompt"]) for e in EXAMPLES]
            write(path, jsonl(renamed[:5]))
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "few-shot: 5 examples" in d.log(), what="the reload")
            d.call("improve", {"idea": IDEA, "mode": "few-shot"})
            m = user_message(fake)
            self.assertIn("NEW EX1 heater", m)
            self.assertIn("NEW EX3 again", m)
            self.assertNotIn("EX5 raise", m)
            # A broken file: logged with its line, the loaded examples stay.
            write(path, jsonl(renamed[:2]) + "{not json\n")
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "not reloaded" in d.log(), what="the refused reload")
            self.assertIn(path + ":4:", d.log())
            r = d.call("improve", {"idea": IDEA, "mode": "few-shot"})["result"]
            self.assertEqual(r["backend"], "few-shot")
            self.assertIn("NEW EX3 again", user_message(fake))


if __name__ == "__main__":
    unittest.main()
