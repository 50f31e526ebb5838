"""promptctl against the real daemon: commands, --json, exit codes."""
import json
import os
import unittest

from harness import Daemon, base_env, promptctl


class PromptctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.d.stop() == 0
        finally:
            cls.d.cleanup()

    def ctl(self, *args, **kw):
        return promptctl(["--socket", self.d.socket] + list(args), env=self.d.env, **kw)

    def test_ping(self):
        r = self.ctl("ping")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "pong"))

    def test_version_human_and_json(self):
        r = self.ctl("version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("protocol 1", r.stdout)
        r = self.ctl("--json", "version")
        self.assertEqual(json.loads(r.stdout)["protocol"], 1)
        r = self.ctl("version", "--json")
        self.assertEqual(json.loads(r.stdout)["protocol"], 1)

    def test_health(self):
        r = self.ctl("health")
        self.assertEqual(r.returncode, 0)
        for word in ("status", "database", "llm", "requests"):
            self.assertIn(word, r.stdout)
        h = json.loads(self.ctl("health", "--json").stdout)
        self.assertEqual(h["socket"], self.d.socket)

    def test_config_hides_secrets(self):
        r = self.ctl("config", "--json")
        self.assertEqual(r.returncode, 0)
        self.assertIn("LLM_PROVIDER", json.loads(r.stdout))

    def test_call_raw(self):
        r = self.ctl("call", "ping")
        self.assertEqual(json.loads(r.stdout), "pong")
        r = self.ctl("call", "cancel", '{"request_id": 5}')
        self.assertEqual(json.loads(r.stdout), {"cancelled": False})

    def test_daemon_error_exits_1(self):
        r = self.ctl("call", "no.such.method")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown method", r.stderr)

    def test_usage_errors_exit_2(self):
        self.assertEqual(self.ctl().returncode, 2)
        self.assertEqual(self.ctl("frobnicate").returncode, 2)
        r = self.ctl("call", "ping", "{not json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not valid JSON", r.stderr)

    def test_help_for_every_command(self):
        r = self.ctl("--help")
        self.assertEqual(r.returncode, 0)
        commands = [line.split()[0] for line in r.stdout.split("Commands:")[1].split("Options:")[0]
                    .strip().splitlines()]
        self.assertIn("ping", commands)
        for cmd in commands:
            r = self.ctl(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn("usage: promptctl " + cmd, r.stdout)

    def test_not_running_exits_3_with_advice(self):
        r = promptctl(["--socket", os.path.join(self.d.home, "nothing.sock"), "ping"],
                      env=self.d.env)
        self.assertEqual(r.returncode, 3)
        self.assertIn("not running", r.stderr)
        self.assertIn("Start it", r.stderr)

    def test_socket_from_environment(self):
        env = dict(self.d.env, PROMPTD_SOCKET=self.d.socket)
        r = promptctl(["ping"], env=env)
        self.assertEqual(r.stdout.strip(), "pong")


if __name__ == "__main__":
    unittest.main()
