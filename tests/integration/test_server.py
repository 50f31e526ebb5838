"""The server through the real daemon: every generic method, the abuse
battery, limits, many clients, backpressure, sockets and signals."""
import json
import os
import resource
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import PROMPTD, Client, Daemon, base_env


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(env={"MAX_REQUEST_BYTES": "4096"})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.d.stop()
            assert code == 0, "promptd exited %s" % code
        finally:
            cls.d.cleanup()

    def tearDown(self):
        # After each abuse, a fresh client is still served.
        self.assertEqual(self.d.call("ping")["result"], "pong")

    def raw(self, data, client=None):
        c = client or self.d.client()
        c.send_raw(data)
        return c.recv()

    def assertError(self, msg, code, kind):
        self.assertIn("error", msg, msg)
        self.assertEqual(msg["error"]["code"], code, msg)
        self.assertEqual(msg["error"]["data"]["kind"], kind, msg)
        self.assertIsInstance(msg["error"]["message"], str)

    def test_ping_version_health_config(self):
        c = self.d.client()
        self.assertEqual(c.result("ping"), "pong")
        v = c.result("version")
        self.assertEqual(v["protocol"], 1)
        for k in ("version", "sqlite", "libuv", "libcurl"):
            self.assertIsInstance(v[k], str)
        h = c.result("health")
        self.assertIn(h["status"], ("ok", "degraded"))
        self.assertEqual(h["socket"], self.d.socket)
        self.assertIn("status", h["database"])
        for k in ("provider", "model", "base_url"):
            self.assertIn(k, h["llm"])
        self.assertEqual(h["requests"]["in_flight"], 0)
        self.assertGreaterEqual(h["uptime_s"], 0)
        cfg = c.result("config.get")
        self.assertEqual(cfg["MAX_REQUEST_BYTES"], 4096)

    def test_not_json(self):
        self.assertError(self.raw(b"hello\n"), -32700, "parse_error")

    def test_json_array_batch(self):
        m = self.raw(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n')
        self.assertError(m, -32600, "invalid_request")
        self.assertIsNone(m["id"])

    def test_json_string(self):
        self.assertError(self.raw(b'"ping"\n'), -32600, "invalid_request")

    def test_missing_or_wrong_jsonrpc(self):
        self.assertError(self.raw(b'{"id":1,"method":"ping"}\n'), -32600, "invalid_request")
        m = self.raw(b'{"jsonrpc":"1.0","id":9,"method":"ping"}\n')
        self.assertError(m, -32600, "invalid_request")
        self.assertEqual(m["id"], 9)

    def test_object_id(self):
        m = self.raw(b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n')
        self.assertError(m, -32600, "invalid_request")
        self.assertIsNone(m["id"])

    def test_missing_or_non_string_method(self):
        self.assertError(self.raw(b'{"jsonrpc":"2.0","id":1}\n'), -32600, "invalid_request")
        self.assertError(self.raw(b'{"jsonrpc":"2.0","id":1,"method":["ping"]}\n'), -32600,
                         "invalid_request")

    def test_non_object_params(self):
        self.assertError(self.raw(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":3}\n'),
                         -32600, "invalid_request")
        self.assertError(self.raw(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}\n'),
                         -32602, "invalid_params")

    def test_unknown_method(self):
        m = self.d.call("does.not.exist")
        self.assertError(m, -32601, "method_not_found")
        self.assertIn("does.not.exist", m["error"]["message"])

    def test_huge_method_name_is_cut_in_message(self):
        c = self.d.client()
        m = c.call("x" * 3000)
        self.assertError(m, -32601, "method_not_found")
        self.assertLess(len(m["error"]["message"]), 300)

    def test_line_of_max_plus_one_closes(self):
        c = self.d.client()
        line = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
        c.send_raw(line + b" " * (4096 - len(line) + 1) + b"\n")
        m = c.recv()
        self.assertError(m, -32600, "too_large")
        self.assertIsNone(c.recv())  # then the connection is closed

    def test_line_of_exactly_max_is_served(self):
        c = self.d.client()
        line = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
        c.send_raw(line + b" " * (4096 - len(line)) + b"\n")
        self.assertEqual(c.recv()["result"], "pong")

    def test_endless_line_without_newline_is_cut_early(self):
        c = self.d.client()
        c.send_raw(b"{" + b"x" * 10000)
        self.assertError(c.recv(), -32600, "too_large")

    def test_one_byte_at_a_time(self):
        c = self.d.client()
        for b in b'{"jsonrpc":"2.0","id":"slow","method":"ping"}\n':
            c.send_raw(bytes([b]))
        m = c.recv()
        self.assertEqual(m["id"], "slow")
        self.assertEqual(m["result"], "pong")

    def test_hundred_requests_in_one_write(self):
        c = self.d.client()
        data = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % i for i in range(100))
        c.send_raw(data)
        ids = sorted(c.recv()["id"] for _ in range(100))
        self.assertEqual(ids, list(range(100)))

    def test_invalid_utf8(self):
        m = self.raw(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xc3\x28"}}\n')
        self.assertError(m, -32700, "parse_error")

    def test_nul_byte(self):
        self.assertError(self.raw(b'{"jsonrpc":"2.0","id":1,"method":"pi\x00ng"}\n'), -32700,
                         "parse_error")

    def test_escaped_nul_is_refused_with_the_id_and_the_field(self):
        # Valid JSON, but C strings cannot hold it: refused, naming where.
        m = self.raw(b'{"jsonrpc":"2.0","id":7,"method":"improve",'
                     b'"params":{"idea":"x","context":["ok","a\\u0000b"]}}\n')
        self.assertError(m, -32602, "invalid_params")
        self.assertEqual(m["id"], 7)
        self.assertIn("params.context[1] contains \\u0000", m["error"]["message"])
        m = self.raw(b'{"jsonrpc":"2.0","id":8,"method":"pi\\u0000ng"}\n')
        self.assertError(m, -32600, "invalid_request")
        self.assertEqual(m["id"], 8)
        self.assertIn("method contains", m["error"]["message"])
        m = self.raw(b'{"jsonrpc":"2.0","id":"a\\u0000","method":"ping"}\n')
        self.assertError(m, -32600, "invalid_request")
        self.assertIsNone(m["id"])
        self.assertEqual(self.d.call("ping")["result"], "pong")

    def test_client_closing_mid_line(self):
        c = self.d.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"meth')
        c.close()

    def test_client_closing_with_requests_unread(self):
        c = self.d.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"health"}\n' * 50)
        c.close()

    def test_notification_gets_no_answer(self):
        c = self.d.client()
        c.send_raw(b'{"jsonrpc":"2.0","method":"ping"}\n{"jsonrpc":"2.0","method":"nope"}\n')
        m = c.call("ping")
        self.assertEqual(m["id"], 1)
        self.assertEqual(c.notifications, [])

    def test_many_simultaneous_clients(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        clients = []
        try:
            for _ in range(1000):
                clients.append(self.d.client(timeout=30))
            for i, c in enumerate(clients):
                c.request("ping", id=i)
            for i, c in enumerate(clients):
                m = c.recv()
                self.assertEqual((m["id"], m["result"]), (i, "pong"))
            h = self.d.call("health")["result"]
            self.assertEqual(h["requests"]["in_flight"], 0)
        finally:
            for c in clients:
                c.close()

    def test_client_that_never_reads(self):
        # Requests whose answers are big, never read: the daemon must stop
        # reading this client instead of queueing without bound.
        c = self.d.client()
        c.sock.setblocking(False)
        req = b'{"jsonrpc":"2.0","id":1,"method":"config.get"}\n'
        chunk = req * 200
        sent = 0
        deadline = time.monotonic() + 10
        blocked_since = None
        while time.monotonic() < deadline:
            try:
                # Resume where the last partial send stopped: lines stay whole.
                sent += c.sock.send(chunk[sent % len(chunk):])
                blocked_since = None
            except BlockingIOError:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > 1.0:
                    break  # the daemon stopped reading us
                time.sleep(0.01)
        self.assertIsNotNone(blocked_since, "the daemon kept reading a client that never reads")
        rss = rss_kb(self.d.proc.pid)
        self.assertLess(rss, 200 * 1024, "daemon RSS %d kB while a client does not read" % rss)
        # Others are served meanwhile.
        self.assertEqual(self.d.call("ping")["result"], "pong")
        # Draining lets the daemon resume: every complete request is answered.
        c.sock.setblocking(True)
        c.sock.settimeout(30)
        requests = sent // len(req)
        for _ in range(requests):
            self.assertIn("result", c.recv())
        c.close()


class SocketLifecycleTest(unittest.TestCase):
    def test_sigterm_removes_socket_and_exits_zero(self):
        d = Daemon()
        try:
            d.start()
            self.assertTrue(os.path.exists(d.socket))
            self.assertEqual(os.stat(d.socket).st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(os.path.dirname(d.socket)).st_mode & 0o777, 0o700)
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            self.assertFalse(os.path.exists(d.socket))
            self.assertIn("stopping", d.log())
        finally:
            d.cleanup()

    def test_sigint_also_stops_cleanly(self):
        d = Daemon()
        try:
            d.start()
            self.assertEqual(d.stop(signal.SIGINT), 0)
        finally:
            d.cleanup()

    def test_stale_socket_is_replaced(self):
        d = Daemon()
        try:
            os.makedirs(os.path.dirname(d.socket), mode=0o700, exist_ok=True)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(d.socket)
            s.close()  # a socket file with nobody listening
            d.start()
            self.assertEqual(d.call("ping")["result"], "pong")
            self.assertIn("stale", d.log())
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_second_daemon_on_same_socket_exits_1(self):
        d = Daemon()
        try:
            d.start()
            second = subprocess.run(d.command(), env=d.env, capture_output=True, text=True,
                                    timeout=20)
            self.assertEqual(second.returncode, 1)
            self.assertIn("already running", second.stderr)
            self.assertIn(str(d.proc.pid), second.stderr)
            self.assertEqual(d.call("ping")["result"], "pong")  # the first is untouched
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_second_daemon_stops_before_opening_its_database(self):
        d = Daemon()
        try:
            d.start()
            other_db = os.path.join(d.home, "second", "history.db")
            env = dict(d.env, SQLITE_DB_PATH=other_db)
            second = subprocess.run(d.command(), env=env, capture_output=True, text=True,
                                    timeout=20)
            self.assertEqual(second.returncode, 1)
            self.assertIn("already running", second.stderr)
            self.assertFalse(os.path.exists(other_db), "the socket is claimed first")
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_path_that_is_not_a_socket_is_refused(self):
        d = Daemon()
        try:
            os.makedirs(os.path.dirname(d.socket), mode=0o700, exist_ok=True)
            with open(d.socket, "w") as f:
                f.write("precious")
            r = subprocess.run(d.command(), env=d.env, capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 1)
            self.assertIn("not a socket", r.stderr)
            with open(d.socket) as f:
                self.assertEqual(f.read(), "precious")
        finally:
            d.cleanup()

    def test_socket_path_too_long(self):
        d = Daemon(socket_path="/tmp/" + "x" * 120 + ".sock")
        try:
            r = subprocess.run(d.command(), env=d.env, capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2)
            self.assertIn("too long", r.stderr)
        finally:
            d.cleanup()

    def test_default_socket_under_xdg_runtime_dir(self):
        d = Daemon()
        try:
            cmd = [PROMPTD]
            d.proc = subprocess.Popen(cmd, env=d.env, stdout=subprocess.DEVNULL,
                                      stderr=open(d.log_path, "ab"))
            d.log_file = open(d.log_path, "ab")
            d.socket = os.path.join(d.env["XDG_RUNTIME_DIR"], "promptd", "promptd.sock")
            d.wait_ready()
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    @unittest.skipUnless(os.geteuid() == 0, "needs root to act as another user")
    def test_peer_with_another_uid_is_refused(self):
        d = Daemon()
        try:
            d.start()
            # Open the filesystem permissions so only the peer check stands.
            os.chmod(os.path.dirname(d.socket), 0o755)
            os.chmod(d.home, 0o755)
            os.chmod(d.socket, 0o666)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    c = Client(d.socket, timeout=5)
                    c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
                    got = c.recv_line()
                    os.write(w, b"EOF" if got is None else b"ANSWERED")
                except (BrokenPipeError, ConnectionResetError):
                    os.write(w, b"EOF")  # closed before or while we wrote: refused too
                except OSError as e:
                    os.write(w, ("ERR %s" % e).encode())
                os._exit(0)
            os.close(w)
            os.waitpid(pid, 0)
            verdict = os.read(r, 100).decode()
            os.close(r)
            self.assertEqual(verdict, "EOF")
            self.assertIn("another user", d.log())
            self.assertEqual(d.call("ping")["result"], "pong")
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


class ConfigTest(unittest.TestCase):
    def run_daemon(self, args, env=None, config=None, mode=0o600):
        d = Daemon(env=env)
        try:
            if config is not None:
                path = os.path.join(d.home, "promptd.conf")
                with open(path, "w") as f:
                    f.write(config)
                os.chmod(path, mode)
                args = ["--config", path] + args
            return subprocess.run([PROMPTD] + args, env=d.env, capture_output=True, text=True,
                                  timeout=20)
        finally:
            d.cleanup()

    def test_check_config_prints_effective_config(self):
        r = self.run_daemon(["--check-config", "--log-level", "debug"],
                            env={"LLM_MODEL": "m1"}, config="OPENAI_API_KEY=sk-abc\nFEWSHOT_K=4\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual(cfg["LLM_MODEL"], "m1")
        self.assertEqual(cfg["LOG_LEVEL"], "debug")
        self.assertEqual(cfg["FEWSHOT_K"], 4)
        self.assertEqual(cfg["OPENAI_API_KEY"], "***")
        self.assertNotIn("sk-abc", r.stdout + r.stderr)

    def test_invalid_value_names_key_file_line_and_exits_2(self):
        r = self.run_daemon(["--check-config"], config="LLM_MODEL=x\n\nMAX_LATENCY_MS=soon\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("promptd.conf:3", r.stderr)
        self.assertIn("MAX_LATENCY_MS", r.stderr)
        r = self.run_daemon([], config="MAX_LATENCY_MS=soon\n")
        self.assertEqual(r.returncode, 2)

    def test_world_readable_secret_refused(self):
        r = self.run_daemon(["--check-config"], config="ANTHROPIC_API_KEY=sk-x\n", mode=0o644)
        self.assertEqual(r.returncode, 2)
        self.assertIn("chmod 600", r.stderr)
        self.assertNotIn("sk-x", r.stderr)

    def test_old_env_file_with_unknown_keys(self):
        # Few-shot needs its trainset (test_fewshot.py): name one.
        fd, trainset = tempfile.mkstemp(suffix=".jsonl")
        try:
            os.write(fd, b'{"idea": "a good idea", "improved_prompt": "p"}\n')
            os.close(fd)
            r = self.run_daemon(["--check-config"],
                                config="API_HOST=0.0.0.0\nDSPY_FEWSHOT_ENABLED=true\n"
                                       "FEWSHOT_TRAINSET_PATH=%s\n" % trainset)
        finally:
            os.unlink(trainset)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unknown key API_HOST", r.stderr)
        self.assertTrue(json.loads(r.stdout)["FEWSHOT_ENABLED"])
        # An old .env enabling few-shot without a trainset is refused, saying what to set.
        r = self.run_daemon(["--check-config"], config="DSPY_FEWSHOT_ENABLED=true\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("set it to a file of example improvements", r.stderr)

    def test_bad_flags(self):
        self.assertEqual(self.run_daemon(["--bogus"]).returncode, 2)
        self.assertEqual(self.run_daemon(["--log-level", "loud", "--check-config"]).returncode, 2)
        r = self.run_daemon(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("promptd", r.stdout)
        r = self.run_daemon(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)

    def test_sighup_reloads_and_logs_changes(self):
        d = Daemon(config={"LLM_MODEL": "before", "SQLITE_WAL_MODE": "true"})
        try:
            d.start()
            self.assertEqual(d.call("config.get")["result"]["LLM_MODEL"], "before")
            with open(d.config_path, "w") as f:
                f.write("LLM_MODEL=after\nSQLITE_WAL_MODE=false\nLLM_API_KEY=sekrit\n")
            d.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while d.call("config.get")["result"]["LLM_MODEL"] != "after":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            log = d.log()
            self.assertIn("LLM_MODEL changed", log)
            self.assertIn("SQLITE_WAL_MODE", log)
            self.assertIn("restart", log)
            self.assertNotIn("sekrit", log)
            # A broken file keeps the old configuration.
            with open(d.config_path, "w") as f:
                f.write("MAX_LATENCY_MS=never\n")
            d.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertEqual(d.call("config.get")["result"]["LLM_MODEL"], "after")
            self.assertIn("not reloaded", d.log())
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()


class FdExhaustionTest(unittest.TestCase):
    def test_out_of_fds_does_not_spin_and_recovers(self):
        d = Daemon()

        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

        try:
            d.log_file = open(d.log_path, "ab")
            d.proc = subprocess.Popen(d.command(), env=d.env, stdout=d.log_file,
                                      stderr=d.log_file, preexec_fn=low_fd_limit)
            d.wait_ready()
            clients = []
            for _ in range(80):  # more than the daemon can hold
                try:
                    clients.append(Client(d.socket, timeout=5))
                except OSError:
                    break

            def cpu_ticks():
                with open("/proc/%d/stat" % d.proc.pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])

            before = cpu_ticks()
            time.sleep(1.0)
            used = cpu_ticks() - before
            hz = os.sysconf("SC_CLK_TCK")
            self.assertLess(used, hz // 2, "the daemon busy-loops while out of fds")
            for c in clients:
                c.close()
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.assertEqual(d.call("ping", timeout=2)["result"], "pong")
                    break
                except (OSError, ConnectionError):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.1)
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()
