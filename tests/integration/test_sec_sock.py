"""Issue 11, items 1, 2, 5, 7 (config half) and 15, through the real daemon
and promptctl: another local user must not get between a person and their
daemon (socket directory, server uid, config file), credentials in
LLM_BASE_URL are never shown, a FIFO never blocks start-up or the loop, and
SIGHUP does not keep old configurations.

Acting as another user needs root (setuid in a child, chown); those tests
skip otherwise, saying so."""
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from fake_llm import FakeLLM  # noqa: E402
from harness import (PROMPTCTL, PROMPTD, RSS_MEANINGFUL, SLOW, Client, Daemon,  # noqa: E402
                     base_env, promptctl, wait_for)

NOBODY = 65534
IDEA = "email my landlord about the broken heater"
IS_ROOT = os.geteuid() == 0
NEEDS_ROOT = "needs root to act as another user (setuid, chown)"


def as_user(uid, gid=None, umask=None):
    """A preexec_fn that becomes uid (and gid) in the child."""
    def become():
        os.setgroups([])
        os.setgid(uid if gid is None else gid)
        os.setuid(uid)
        if umask is not None:
            os.umask(umask)
    return become


def runnable_by_others(test, path):
    """path, or a copy of it another uid can run: a checkout in root's
    home (0700, as `git clone` makes it as root) is not searchable by the
    uid a test becomes."""
    d = os.path.dirname(os.path.abspath(path))
    reachable = True
    while reachable:
        reachable = bool(os.stat(d).st_mode & stat.S_IXOTH)
        if d == os.path.dirname(d):
            break
        d = os.path.dirname(d)
    if reachable and os.stat(path).st_mode & stat.S_IXOTH:
        return path
    d = tempfile.mkdtemp(prefix="pd-bin-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, True)
    os.chmod(d, 0o755)
    copy = os.path.join(d, os.path.basename(path))
    shutil.copy(path, copy)
    os.chmod(copy, 0o755)
    return copy


def unused_uid():
    """A uid no account has and whose fallback directory is free: the
    daemon runs as it, so the real /tmp/promptd-$UID logic is exercised
    without touching anybody's own directory."""
    for uid in range(42000 + os.getpid() % 5000, 60000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not os.path.lexists("/tmp/promptd-%d" % uid):
                return uid
    raise unittest.SkipTest("no free uid")


def private_dir(test):
    d = tempfile.mkdtemp(prefix="pd-sec-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, True)
    return d


def expect_exit(test, cmd, env, preexec_fn=None, timeout=20):
    """Runs promptd, which must refuse and exit: one that serves (or hangs)
    fails the test instead of the suite."""
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout * SLOW, preexec_fn=preexec_fn,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        test.fail("promptd did not exit within %ss (it served or hung): %s"
                  % (timeout, (e.stderr or b"")[-2000:]))


def quiet_env(home):
    env = base_env(home)
    env.update({"LLM_PROVIDER": "builtin", "SQLITE_ENABLED": "false"})
    return env


def connectable(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class SocketDirectoryTest(unittest.TestCase):
    """An explicit --socket path's directory is judged like the default
    one: a real directory, ours, 0700."""

    def refused(self, sock, env=None):
        home = os.path.dirname(os.path.dirname(sock))
        r = expect_exit(self, [PROMPTD, "--socket", sock], env or quiet_env(home))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(os.path.lexists(sock), "nothing is bound in a refused directory")
        self.assertNotIn("AddressSanitizer", r.stderr)
        return r.stderr

    def test_a_directory_open_to_others_is_refused_and_chmod_700_fixes_it(self):
        home = private_dir(self)
        sdir = os.path.join(home, "s")
        os.mkdir(sdir)
        os.chmod(sdir, 0o777)
        err = self.refused(os.path.join(sdir, "p.sock"))
        self.assertIn("open to other users (mode 0777)", err)
        self.assertIn("chmod 700 %s" % sdir, err)
        os.chmod(sdir, 0o750)  # group alone is refused too
        self.assertIn("mode 0750", self.refused(os.path.join(sdir, "p.sock")))
        os.chmod(sdir, 0o700)  # the advice works
        with Daemon(env={"LLM_PROVIDER": "builtin"}, socket_path=os.path.join(sdir, "p.sock"),
                    home=home) as d:
            self.assertEqual(d.call("ping")["result"], "pong")

    @unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
    def test_another_users_directory_is_refused(self):
        home = private_dir(self)
        for mode in (0o700, 0o777):
            sdir = os.path.join(home, "s%o" % mode)
            os.mkdir(sdir)
            os.chmod(sdir, mode)
            os.chown(sdir, NOBODY, NOBODY)
            err = self.refused(os.path.join(sdir, "p.sock"))
            self.assertIn("belongs to another user (uid %d)" % NOBODY, err)
            self.assertIn("--socket", err)

    @unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
    def test_a_symbolic_link_is_refused(self):
        home = private_dir(self)
        target = os.path.join(home, "theirs")
        os.mkdir(target)
        os.chmod(target, 0o777)
        os.chown(target, NOBODY, NOBODY)
        link = os.path.join(home, "s")
        os.symlink(target, link)
        err = self.refused(os.path.join(link, "p.sock"))
        self.assertIn("is a symbolic link", err)
        self.assertEqual(os.listdir(target), [], "nothing was created through the link")

    def test_a_file_where_the_directory_should_be_is_refused(self):
        home = private_dir(self)
        path = os.path.join(home, "s")
        with open(path, "w") as f:
            f.write("precious")
        err = self.refused(os.path.join(path, "p.sock"))
        self.assertIn("is not a directory", err)
        with open(path) as f:
            self.assertEqual(f.read(), "precious")

    def test_the_directory_is_created_0700_whatever_the_umask(self):
        home = private_dir(self)
        sock = os.path.join(home, "new", "p.sock")
        env = quiet_env(home)
        proc = subprocess.Popen([PROMPTD, "--socket", sock], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=lambda: os.umask(0))
        try:
            # Connectable, not merely present: the file exists from bind(),
            # before the daemon watches SIGTERM (it listens after).
            wait_for(lambda: connectable(sock) or proc.poll() is not None, what="the socket")
            self.assertIsNone(proc.poll(), "promptd exited")
            st = os.lstat(os.path.dirname(sock))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
            self.assertEqual(stat.S_IMODE(os.lstat(sock).st_mode), 0o600)
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(20 * SLOW), 0)
            proc.stderr.close()


@unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
class FallbackDirectoryTest(unittest.TestCase):
    """Without XDG_RUNTIME_DIR the socket is /tmp/promptd-$UID: another
    user can create that path first. The daemon runs as an unused uid so
    the real default is used and nobody's own directory is touched."""

    def setUp(self):
        self.uid = unused_uid()
        self.promptd = runnable_by_others(self, PROMPTD)
        self.path = "/tmp/promptd-%d" % self.uid
        self.addCleanup(self.remove_path)
        self.home = private_dir(self)
        os.chown(self.home, self.uid, self.uid)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
                    "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
                    "LLM_PROVIDER": "builtin", "SQLITE_ENABLED": "false",
                    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99"}

    def remove_path(self):
        if os.path.islink(self.path) or os.path.isfile(self.path):
            os.unlink(self.path)
        elif os.path.isdir(self.path):
            shutil.rmtree(self.path, ignore_errors=True)

    def refused(self):
        r = expect_exit(self, [self.promptd], self.env, preexec_fn=as_user(self.uid))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(self.path, r.stderr)
        self.assertIn("XDG_RUNTIME_DIR", r.stderr)  # says where else to go
        self.assertNotIn("AddressSanitizer", r.stderr)
        return r.stderr

    def squat_dir(self, mode):
        os.mkdir(self.path)
        os.chmod(self.path, mode)
        os.chown(self.path, NOBODY, NOBODY)

    def test_another_users_open_directory_is_refused(self):
        self.squat_dir(0o777)
        self.assertIn("belongs to another user (uid %d)" % NOBODY, self.refused())
        self.assertEqual(os.listdir(self.path), [], "no socket in the squatter's directory")

    def test_another_users_private_directory_gets_a_clear_message(self):
        self.squat_dir(0o700)
        self.assertIn("belongs to another user (uid %d)" % NOBODY, self.refused())

    def test_a_symbolic_link_to_another_users_directory_is_refused(self):
        target = private_dir(self)
        os.chmod(target, 0o777)
        os.chown(target, NOBODY, NOBODY)
        os.symlink(target, self.path)
        os.lchown(self.path, NOBODY, NOBODY)
        self.assertIn("is a symbolic link", self.refused())
        self.assertEqual(os.listdir(target), [])

    def test_a_file_at_the_path_gets_a_clear_message(self):
        with open(self.path, "w") as f:
            f.write("squat")
        os.chown(self.path, NOBODY, NOBODY)
        err = self.refused()
        self.assertIn("is not a directory (uid %d owns it)" % NOBODY, err)

    def test_a_free_path_is_created_private_and_served(self):
        proc = subprocess.Popen([self.promptd], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=as_user(self.uid, umask=0))
        try:
            sock = os.path.join(self.path, "promptd.sock")
            # Connectable, not merely present: the file exists from bind(),
            # before the daemon watches SIGTERM (it listens after).
            wait_for(lambda: connectable(sock) or proc.poll() is not None, what="the socket")
            self.assertIsNone(proc.poll())
            st = os.lstat(self.path)
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (self.uid, 0o700))
            # promptctl, as the same user, finds it by the same rule.
            r = subprocess.run([runnable_by_others(self, PROMPTCTL), "ping"], env=self.env,
                               capture_output=True, text=True,
                               timeout=30, preexec_fn=as_user(self.uid))
            self.assertEqual((r.returncode, r.stdout.strip()), (0, "pong"), r.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(20 * SLOW), 0)
            proc.stderr.close()


class FakeServerOfAnotherUser:
    """A Unix socket listened on by uid NOBODY (a forked child): it records
    how many bytes the first client sent before closing."""

    def __init__(self, test):
        self.dir = private_dir(test)
        os.chown(self.dir, NOBODY, NOBODY)
        self.path = os.path.join(self.dir, "p.sock")
        ready_r, ready_w = os.pipe()
        self.result_r, result_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(ready_r)
            os.close(self.result_r)
            self.serve(ready_w, result_w)
        os.close(ready_w)
        os.close(result_w)
        test.addCleanup(self.close)
        if os.read(ready_r, 16) != b"READY":
            raise AssertionError("the fake server did not start")
        os.close(ready_r)

    def serve(self, ready_w, result_w):
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.path)
            os.chmod(self.path, 0o666)
            s.listen(4)
            os.write(ready_w, b"READY")
            s.settimeout(30)
            c, _ = s.accept()
            c.settimeout(10)
            try:
                got = c.recv(65536)
            except OSError:
                got = b""
            os.write(result_w, str(len(got)).encode())
            c.close()
        except BaseException as e:  # the parent reads the reason
            os.write(result_w, ("ERR %r" % e).encode())
        os._exit(0)

    def bytes_received(self):
        text = os.read(self.result_r, 200).decode()
        os.waitpid(self.pid, 0)
        self.pid = None
        return int(text) if text.isdigit() else text

    def close(self):
        os.close(self.result_r)
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


@unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
class ServerUidTest(unittest.TestCase):
    """promptctl checks who serves the socket (SO_PEERCRED / getpeereid)
    before it sends a byte."""

    def test_promptctl_sends_nothing_to_another_users_server(self):
        for args in (["ping"], ["improve", "my salary is 91k, draft a raise request"]):
            fake = FakeServerOfAnotherUser(self)
            r = promptctl(["--socket", fake.path] + args, env=base_env(private_dir(self)))
            self.assertEqual(fake.bytes_received(), 0, "promptctl sent the request")
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("belongs to another user (uid %d" % NOBODY, r.stderr)
            self.assertIn("nothing was sent", r.stderr)

    def test_promptctl_run_by_another_user_says_so_not_broken_pipe(self):
        d = Daemon(env={"LLM_PROVIDER": "builtin"})
        try:
            d.start()
            # Open the filesystem permissions so only the uid checks stand.
            os.chmod(os.path.dirname(d.socket), 0o755)
            os.chmod(d.home, 0o755)
            os.chmod(d.socket, 0o666)
            env = dict(d.env, HOME="/tmp")
            r = subprocess.run([runnable_by_others(self, PROMPTCTL), "--socket", d.socket, "ping"], env=env,
                               capture_output=True, text=True, timeout=30,
                               preexec_fn=as_user(NOBODY))
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("belongs to another user (uid 0", r.stderr)
            self.assertNotIn("Broken pipe", r.stderr)
            self.assertEqual(d.call("ping")["result"], "pong")
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


class ConfigFileTrustTest(unittest.TestCase):
    """Whoever can write the config file can point LLM_BASE_URL at their
    own server: a file (or directory) others can write is refused, secret
    or not."""

    def setUp(self):
        self.home = private_dir(self)
        self.env = quiet_env(self.home)
        self.conf = os.path.join(self.home, "promptd.conf")

    def write(self, text="LLM_BASE_URL=http://127.0.0.1:9/v1\n", mode=0o600, path=None):
        path = path or self.conf
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def check(self, path=None):
        return subprocess.run([PROMPTD, "--check-config", "--config", path or self.conf],
                              env=self.env, capture_output=True, text=True, timeout=20 * SLOW)

    def assert_refused(self, r, *needles):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_group_or_world_writable_file_is_refused_without_a_secret(self):
        for mode in (0o620, 0o602, 0o666):
            self.write(mode=mode)
            self.assert_refused(self.check(), "can be changed by other users (mode %04o)" % mode,
                                "chmod go-w %s" % self.conf, "chmod 600")
        # ...at start-up too, with the same sentence.
        r = expect_exit(self, [PROMPTD, "--socket", os.path.join(self.home, "s", "p.sock"),
                               "--config", self.conf], self.env)
        self.assert_refused(r, "chmod go-w")
        # Readable by others and without a secret stays fine.
        self.write(mode=0o644)
        self.assertEqual(self.check().returncode, 0)

    @unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
    def test_a_file_owned_by_another_user_is_refused(self):
        self.write(mode=0o644)
        os.chown(self.conf, NOBODY, NOBODY)
        self.assert_refused(self.check(), "belongs to another user (uid %d)" % NOBODY)

    def test_a_directory_others_can_write_to_is_refused_unless_sticky(self):
        cdir = os.path.join(self.home, "shared")
        os.mkdir(cdir)
        path = self.write(path=os.path.join(cdir, "promptd.conf"))
        os.chmod(cdir, 0o777)
        self.assert_refused(self.check(path), "which other users can write to (mode 0777)",
                            "chmod go-w %s" % cdir)
        os.chmod(cdir, 0o1777)  # sticky: others cannot rename or remove our file
        self.assertEqual(self.check(path).returncode, 0)

    def test_a_symbolic_link_to_a_private_file_is_accepted(self):
        target = self.write(path=os.path.join(self.home, "dotfile.conf"))
        os.symlink(target, self.conf)
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_link_into_a_directory_others_can_write_to_is_refused(self):
        shared = os.path.join(self.home, "shared")
        os.mkdir(shared)
        target = self.write(path=os.path.join(shared, "promptd.conf"))
        os.chmod(shared, 0o777)
        os.symlink(target, self.conf)
        self.assert_refused(self.check(), "which other users can write to")

    def test_sighup_with_a_writable_file_keeps_the_old_configuration(self):
        self.write("LLM_MODEL=before\n")
        d = Daemon(env={"LLM_PROVIDER": "builtin"}, home=self.home,
                   args=["--config", self.conf])
        with d:
            self.write("LLM_MODEL=after\n", mode=0o666)
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "not reloaded" in d.log(), what="the refusal in the log")
            self.assertIn("chmod go-w", d.log())
            self.assertEqual(d.call("config.get")["result"]["LLM_MODEL"], "before")


class NotARegularFileTest(unittest.TestCase):
    """A FIFO as the config file or the trainset must not block start-up or
    the loop: promptd opens them non-blocking and refuses anything that is
    not a regular file."""

    def setUp(self):
        self.home = private_dir(self)
        self.env = quiet_env(self.home)
        self.fifo = os.path.join(self.home, "promptd.conf")
        os.mkfifo(self.fifo, 0o600)

    def test_a_fifo_config_stops_start_up_with_exit_2(self):
        for extra in ([], ["--check-config"]):
            r = expect_exit(self, [PROMPTD, "--socket", os.path.join(self.home, "s", "p.sock"),
                                   "--config", self.fifo] + extra, self.env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("the config file %s" % self.fifo, r.stderr)
            self.assertIn("it is a FIFO, not a regular file", r.stderr)

    def test_a_fifo_at_the_default_config_path_stops_start_up(self):
        os.makedirs(os.path.join(self.home, "config", "promptd"), 0o700, exist_ok=True)
        os.mkfifo(os.path.join(self.home, "config", "promptd", "promptd.conf"), 0o600)
        r = expect_exit(self, [PROMPTD, "--check-config"], self.env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("FIFO", r.stderr)

    def test_a_directory_as_config_is_refused(self):
        d = os.path.join(self.home, "conf.d")
        os.mkdir(d, 0o700)
        r = expect_exit(self, [PROMPTD, "--check-config", "--config", d], self.env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("it is a directory, not a regular file", r.stderr)

    def test_a_fifo_trainset_stops_start_up(self):
        env = dict(self.env, FEWSHOT_ENABLED="true", FEWSHOT_TRAINSET_PATH=self.fifo)
        r = expect_exit(self, [PROMPTD, "--check-config"], env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("the trainset %s" % self.fifo, r.stderr)
        self.assertIn("FIFO", r.stderr)

    def test_a_fifo_swapped_in_before_sighup_keeps_the_loop_and_the_old_config(self):
        conf = os.path.join(self.home, "real.conf")
        with open(conf, "w") as f:
            f.write("LLM_MODEL=before\n")
        os.chmod(conf, 0o600)
        d = Daemon(env={"LLM_PROVIDER": "builtin"}, home=self.home, args=["--config", conf])
        with d:
            os.unlink(conf)
            os.mkfifo(conf, 0o600)
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "not reloaded" in d.log(), what="the refusal in the log")
            self.assertIn("FIFO", d.log())
            # The loop still serves, with the configuration it had.
            self.assertEqual(d.call("ping", timeout=5)["result"], "pong")
            self.assertEqual(d.call("config.get")["result"]["LLM_MODEL"], "before")


URL_WITH_SECRETS = "http://alice:hunter2@127.0.0.1:9/v1?api_key=SEKRIT1&key=SEKRIT2&token=SEKRIT3"
SECRETS = ("alice", "hunter2", "SEKRIT")


class CredentialsInUrlTest(unittest.TestCase):
    """user:password@ and the query of LLM_BASE_URL (and OLLAMA_HOST) are
    hidden everywhere the configuration is shown, as health hides them."""

    def assert_clean(self, text, where):
        for s in SECRETS:
            self.assertNotIn(s, text, "%s shows a credential:\n%s" % (where, text))

    def test_config_get_promptctl_config_and_check_config_hide_them(self):
        env = {"LLM_PROVIDER": "openai", "LLM_BASE_URL": URL_WITH_SECRETS,
               "OLLAMA_HOST": "http://alice:hunter2@box:7"}
        with Daemon(env=env) as d:
            cfg = d.call("config.get")["result"]
            self.assertEqual(cfg["LLM_BASE_URL"], "http://127.0.0.1:9/v1")
            self.assertEqual(cfg["OLLAMA_HOST"], "http://box:7")
            self.assert_clean(json.dumps(cfg), "config.get")
            health = d.call("health")["result"]
            self.assertEqual(health["llm"]["base_url"], cfg["LLM_BASE_URL"])  # one redaction
            for args in (["config"], ["--json", "config"]):
                r = promptctl(["--socket", d.socket] + args, env=d.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("127.0.0.1:9/v1", r.stdout)
                self.assert_clean(r.stdout + r.stderr, "promptctl " + " ".join(args))
            r = subprocess.run([PROMPTD, "--check-config"], env=d.env, capture_output=True,
                               text=True, timeout=20 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("http://127.0.0.1:9/v1", r.stdout)
            self.assert_clean(r.stdout + r.stderr, "--check-config")
            self.assert_clean(d.log(), "the log")

    def test_sighup_logs_the_change_without_them(self):
        d = Daemon(env={"LLM_PROVIDER": "openai"},
                   config="LLM_BASE_URL=%s\n" % URL_WITH_SECRETS)
        with d:
            with open(d.config_path, "w") as f:
                f.write("LLM_BASE_URL=http://bob:swordfish@127.0.0.1:10/v2?token=SEKRIT4\n")
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "LLM_BASE_URL changed" in d.log(), what="the change in the log")
            self.assertIn('from "http://127.0.0.1:9/v1" to "http://127.0.0.1:10/v2"', d.log())
            # Only the password changes: said, not shown.
            with open(d.config_path, "w") as f:
                f.write("LLM_BASE_URL=http://bob:hunter3@127.0.0.1:10/v2?token=SEKRIT4\n")
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "credentials it holds" in d.log(), what="the hidden change")
            self.assert_clean(d.log().replace("bob", ""), "the log")
            self.assertNotIn("bob", d.log())
            self.assertNotIn("swordfish", d.log())


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ReloadMemoryTest(unittest.TestCase):
    """Each SIGHUP frees the configuration it replaces."""

    def reload(self, d, n):
        """n SIGHUPs, each waited for (signals sent together would merge)."""
        mark = "SIGHUP: reloading the configuration"
        for _ in range(n):
            before = d.log().count(mark)
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log().count(mark) > before, what="the reload")
            # The reload ran in that same signal callback: a ping answered
            # now comes after it.
            self.assertEqual(d.call("ping")["result"], "pong")

    @unittest.skipUnless(RSS_MEANINGFUL and os.path.exists("/proc/self/status"),
                         "RSS says nothing under ASan or valgrind, or without /proc "
                         "(LeakSanitizer and memcheck check the same code at exit)")
    def test_reloads_do_not_accumulate_configurations(self):
        # One large value makes each kept configuration visible in RSS:
        # 600 KB per reload (a real one is 0.45 KB: the same leak, magnified).
        big = "x" * (600 * 1024)
        d = Daemon(env={"LLM_PROVIDER": "builtin", "SQLITE_ENABLED": "false"},
                   config="LLM_KEEP_ALIVE=%s\n" % big)
        with d:
            self.reload(d, 3)
            start = rss_kb(d.proc.pid)
            self.reload(d, 30)
            grown = rss_kb(d.proc.pid) - start
            # Kept configurations would add 30 x 600 KB = 18 MB.
            self.assertLess(grown, 6 * 1024, "RSS grew by %d KB over 30 reloads" % grown)

    def test_reloads_while_requests_are_in_flight_stay_memory_safe(self):
        """Under ASan: requests that started under a configuration finish
        after it was freed (they copied what they use)."""
        with FakeLLM("ollama", delay_s=1.5) as fake:
            d = Daemon(env={"LLM_FALLBACK_PROVIDER": "builtin"},
                       config="LLM_PROVIDER=ollama\nLLM_BASE_URL=%s\nLLM_MODEL=m0\n" % fake.url)
            with d:
                clients = [d.client(timeout=30) for _ in range(4)]
                ids = [c.request("improve", {"idea": IDEA, "stream": True}) for c in clients]
                # All four are upstream, under the first configuration.
                self.assertGreaterEqual(len(fake.wait_requests(4, timeout=20 * SLOW)), 4)
                for i in range(1, 11):
                    with open(d.config_path, "w") as f:
                        f.write("LLM_PROVIDER=ollama\nLLM_BASE_URL=%s/x%d\nLLM_MODEL=m%d\n"
                                "LLM_KEEP_ALIVE=%dm\n" % (fake.url, i, i, i))
                    self.reload(d, 1)
                for c, rid in zip(clients, ids):
                    msg = c.response(rid)
                    self.assertIn("result", msg, msg)
                    c.close()


if __name__ == "__main__":
    unittest.main()
