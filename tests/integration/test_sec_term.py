"""Issue 11 items 3 and 4: a hostile model or backend must not reach the
terminal or the log.

Item 3: control characters that model-written (or stored) fields carry (OSC
window titles, CSI clear-screen, OSC 8 links, C1 controls, NUL, other C0
except newline and tab) are shown by promptctl as visible escapes (\\x1b,
\\u009b), on a terminal and piped; --json stays exact JSON. The daemon never
sends NUL in improve.delta, and the deltas still concatenate to the final
improved_prompt (NUL becomes U+FFFD in both).

Item 4: an upstream error body with a newline and escape bytes stays on one
escaped log line.
"""
import json
import subprocess
import tempfile
import os
import pty
import re
import select
import threading
import time
import sys
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_llm import DEFAULT_RESULT, FakeLLM
from harness import PROMPTCTL, Daemon, promptctl, wait_for

IDEA = "write a limerick about a lighthouse keeper"

# What a hostile model writes: a window title (OSC 0), a clear-screen (CSI
# 2J), a hyperlink (OSC 8), an 8-bit CSI (U+009B), NUL, backspace, DEL and a
# carriage return that would overwrite the line. No space at either end, so
# trimming cannot blur the comparison.
EVIL = ("A\x1b]0;pwned\x07B \x1b[2J C\u009b31m D\x00E "
        "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ F\x08\x7f\rG")
# What the daemon sends for it: NUL cannot travel in its C strings.
EVIL_SENT = EVIL.replace("\x00", "\ufffd")
# What a person may store (params refuse NUL outright).
EVIL_STORED = EVIL.replace("\x00", "")
CLIENT = "cli\x1b]0;pwned\x07\u009b"  # a client name is at most 64 characters

# Bytes that must never reach a terminal from promptctl's own printing.
RAW_CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def visible(s):
    """promptctl's rendering (client/cli/ctl_text.c): \\n and \\t as they are,
    other C0 and DEL as \\xNN, C1 as \\u00NN."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "\n\t":
            out.append(ch)
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0x80 <= o <= 0x9F:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    return "".join(out)


def evil_result(text=EVIL):
    r = dict(DEFAULT_RESULT)
    for key in ("role", "directive", "framework", "reasoning"):
        r[key] = key + ":" + text
    r["improved_prompt"] = text
    r["guardrails"] = ["guard:" + text, "Keep it short."]
    return r


def run_on_terminal(args, env, timeout=30):
    """Runs promptctl on a pseudo-terminal; returns (exit code, output bytes)
    with the terminal's \\r\\n turned back into \\n."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: promptctl with the pty as stdin/stdout/stderr
        try:
            os.execve(PROMPTCTL, [PROMPTCTL] + list(args), env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.replace(b"\r\n", b"\n")


class HostileBackend:
    """An HTTP server answering every request with one fixed status and
    body (for error bodies no fake provider sends)."""

    def __init__(self, status, body, content_type="application/json"):
        outer = self
        self.status, self.body, self.content_type = status, body, content_type

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class TermBase(unittest.TestCase):
    """One daemon with history, against the Ollama fake."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("ollama").start()
        cls.d = Daemon(config={"LLM_BASE_URL": cls.fake.url, "LOG_LEVEL": "warn"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()

    def ctl(self, *args):
        """promptctl piped: returns CompletedProcess with bytes output."""
        return subprocess.run([PROMPTCTL, "--socket", self.d.socket] + list(args),
                              env=self.d.env, capture_output=True, timeout=30)

    def tty(self, *args):
        return run_on_terminal(["--socket", self.d.socket] + list(args), self.d.env)

    def assertHarmless(self, out, allow=()):
        """No raw control byte in out except \\n, \\t and the exact
        sequences in allow (promptctl's own bold for search marks)."""
        for seq in allow:
            out = out.replace(seq, b"")
        m = RAW_CONTROLS.search(out)
        if m:
            self.fail("raw control byte %r at %d in %r" % (m.group(0), m.start(), out[:2000]))

    def assertShowsEscapes(self, out):
        text = out.decode("utf-8")
        for esc in ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\u009b31m", "\\x08\\x7f\\x0dG",
                    "\\x1b]8;;http://evil.example/\\x1b\\link"):
            self.assertIn(esc, text)


class ImproveOutput(TermBase):
    def test_deltas_carry_no_nul_and_concatenate_to_the_prompt(self):
        # Regression: improve.delta passed \u0000 through while the final
        # parse refused the same text (jansson rejects \u0000 by default).
        self.fake.configure(result=evil_result())
        c = self.d.client()
        try:
            msg = c.call("improve", {"idea": IDEA, "stream": True})
        finally:
            c.close()
        self.assertIn("result", msg, msg)
        res = msg["result"]
        deltas = [n["params"]["text"] for n in c.notifications
                  if n.get("method") == "improve.delta"]
        self.assertGreater(len(deltas), 3)
        for d in deltas:
            self.assertNotIn("\x00", d)
        self.assertEqual("".join(deltas), res["improved_prompt"])
        self.assertEqual(res["improved_prompt"], EVIL_SENT)
        # Every other control character travels exactly: the protocol is
        # JSON, and the clients render it harmless.
        self.assertEqual(res["role"], "role:" + EVIL_SENT)
        self.assertEqual(res["guardrails"][0], "guard:" + EVIL_SENT)
        self.assertEqual(res["reasoning"], "reasoning:" + EVIL_SENT)

    def test_improve_on_a_terminal_shows_escapes(self):
        self.fake.configure(result=evil_result())
        code, out = self.tty("improve", IDEA)
        self.assertEqual(code, 0, out)
        self.assertHarmless(out)
        self.assertShowsEscapes(out)
        text = out.decode("utf-8")
        self.assertIn(visible(EVIL_SENT), text)  # the streamed prompt
        for label in ("role:", "directive:", "framework:"):
            self.assertIn("%-11s %s:%s" % (label, label[:-1], visible(EVIL_SENT)), text)
        self.assertIn("  - guard:" + visible(EVIL_SENT), text)

    def test_improve_without_streaming_on_a_terminal(self):
        self.fake.configure(result=evil_result())
        code, out = self.tty("improve", "--no-stream", IDEA)
        self.assertEqual(code, 0, out)
        self.assertHarmless(out)
        self.assertIn(visible(EVIL_SENT) + "\n", out.decode("utf-8"))

    def test_improve_piped_escapes_too(self):
        self.fake.configure(result=evil_result())
        r = self.ctl("improve", IDEA)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode("utf-8"), visible(EVIL_SENT) + "\n")
        self.assertHarmless(r.stdout + r.stderr)

    def test_json_stays_exact(self):
        self.fake.configure(result=evil_result())
        for args in (["--json", "improve", IDEA], ["improve", "--json", IDEA]):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                res = json.loads(r.stdout.decode("utf-8"))
                self.assertEqual(res["improved_prompt"], EVIL_SENT)
                self.assertEqual(res["role"], "role:" + EVIL_SENT)
                self.assertEqual(res["guardrails"][0], "guard:" + EVIL_SENT)
                # Still JSON, still exact, but C1 and DEL written as \u
                # escapes, so even --json on a terminal is harmless.
                self.assertHarmless(r.stdout)
                self.assertIn(b"\\u009b31m", r.stdout)

    def test_json_on_a_terminal_stays_exact(self):
        self.fake.configure(result=evil_result())
        code, out = self.tty("--json", "improve", IDEA)
        self.assertEqual(code, 0, out)
        self.assertHarmless(out)
        self.assertEqual(json.loads(out.decode("utf-8"))["improved_prompt"], EVIL_SENT)

    def test_model_names_are_escaped(self):
        self.fake.configure(models=["llama3.2:3b", "evil\x1b]0;t\x07\u009b:latest"])
        for run in (lambda: self.ctl("models").stdout, lambda: self.tty("models")[1]):
            out = run()
            self.assertHarmless(out)
            self.assertIn("evil\\x1b]0;t\\x07\\u009b:latest", out.decode("utf-8"))
        r = self.ctl("--json", "models")
        self.assertIn("evil\x1b]0;t\x07\u009b:latest",
                      json.loads(r.stdout.decode("utf-8"))["models"])


# What reads differently from what it is: a right-to-left override
# ("Trojan Source"), an isolate, a zero-width space, a byte-order mark and a
# line separator.
DECEPTIVE = "pay \u202eLIVE\u202c to \u2066x\u2069 a\u200bb\ufeff c\u2028d"
DECEPTIVE_SHOWN = ("pay \\u202eLIVE\\u202c to \\u2066x\\u2069 a\\u200bb\\ufeff "
                   "c\\u2028d")
# Emoji sequences and Persian need ZWJ and ZWNJ: they stay.
KEPT = "family \U0001F468\u200d\U0001F469 and \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"


class DeceptiveAndClipboard(TermBase):
    def test_bidi_overrides_and_invisibles_are_shown(self):
        self.fake.configure(result=evil_result(DECEPTIVE + " " + KEPT))
        for out in (self.ctl("improve", IDEA).stdout, self.tty("improve", IDEA)[1]):
            text = out.decode("utf-8")
            self.assertIn(DECEPTIVE_SHOWN + " " + KEPT, text)
            for ch in "\u202e\u202c\u2066\u2069\u200b\ufeff\u2028":
                self.assertNotIn(ch, text)

    def test_json_escapes_them_and_stays_exact(self):
        self.fake.configure(result=evil_result(DECEPTIVE))
        r = self.ctl("--json", "improve", IDEA)
        self.assertEqual(json.loads(r.stdout.decode("utf-8"))["improved_prompt"], DECEPTIVE)
        self.assertIn(b"\\u202e", r.stdout)
        self.assertNotIn("\u202e".encode(), r.stdout)

    def test_copy_leaves_control_characters_out(self):
        self.fake.configure(result=evil_result(EVIL + " " + DECEPTIVE + "\nline two\tend"))
        with tempfile.TemporaryDirectory() as bin_dir:
            clip = os.path.join(bin_dir, "clip.txt")
            tool = os.path.join(bin_dir, "xclip")
            with open(tool, "w") as f:
                f.write("#!/bin/sh\ncat > %s\n" % clip)
            os.chmod(tool, 0o700)
            env = dict(self.d.env, PATH=bin_dir + ":" + os.environ.get("PATH", ""),
                       DISPLAY=":99")
            r = subprocess.run([PROMPTCTL, "--socket", self.d.socket, "improve", "--copy", IDEA],
                               env=env, capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(clip, "rb") as f:
                copied = f.read()
        self.assertIsNone(RAW_CONTROLS.search(copied), copied)
        text = copied.decode("utf-8")
        self.assertTrue(text.startswith("A]0;pwnedB [2J C31m D\ufffdE "), text)
        self.assertIn("pay LIVE to x ab c", text.replace("d\nline", " d\nline"))
        self.assertTrue(text.endswith("\nline two\tend"), text)


class StoredFields(TermBase):
    """Fields a person (or another client) stored: idea, context, client,
    and the model's fields read back from the history."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake.configure(result=evil_result(EVIL_STORED))
        c = cls.d.client()
        try:
            msg = c.call("improve", {"idea": "lighthouse " + EVIL_STORED,
                                     "context": "ctx " + EVIL_STORED,
                                     "client": CLIENT})
        finally:
            c.close()
        assert "result" in msg, msg
        cls.row_id = msg["result"]["id"]
        wait_for(lambda: cls.d.call("history.get", {"id": cls.row_id}).get("result"),
                 what="the row is written")

    def test_show_escapes_every_field(self):
        for out in (self.ctl("show", str(self.row_id)).stdout,
                    self.tty("show", str(self.row_id))[1]):
            self.assertHarmless(out)
            self.assertShowsEscapes(out)
            text = out.decode("utf-8")
            self.assertIn("lighthouse " + visible(EVIL_STORED), text)
            self.assertIn("ctx " + visible(EVIL_STORED), text)
            self.assertIn("reasoning:" + visible(EVIL_STORED), text)
            self.assertIn(visible(CLIENT), text)
            self.assertIn("\n" + visible(EVIL_STORED) + "\n", text)

    def test_export_on_a_terminal_escapes_and_to_a_pipe_stays_exact(self):
        for fmt in ("jsonl", "csv"):
            code, out = self.tty("export", "--format", fmt)
            self.assertEqual(code, 0, out)
            self.assertHarmless(out)
            self.assertIn("lighthouse ", out.decode("utf-8"))
        r = self.ctl("export")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.decode("utf-8").splitlines()]
        self.assertIn(EVIL_STORED, [row["improved_prompt"] for row in rows])

    def test_show_json_is_exact(self):
        r = self.ctl("--json", "show", str(self.row_id))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertHarmless(r.stdout)
        row = json.loads(r.stdout.decode("utf-8"))
        stored = self.d.call("history.get", {"id": self.row_id})["result"]
        self.assertEqual(row, stored)
        self.assertEqual(row["improved_prompt"], EVIL_STORED)
        self.assertEqual(row["client"], CLIENT)

    def test_history_table_and_lines_escape(self):
        code, out = self.tty("history")
        self.assertEqual(code, 0, out)
        self.assertHarmless(out)
        self.assertIn(b"lighthouse A\\x1b]0;pwned", out)
        r = self.ctl("history")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertHarmless(r.stdout)
        self.assertIn(b"lighthouse A\\x1b]0;pwned", r.stdout)
        r = self.ctl("--json", "history")
        items = json.loads(r.stdout.decode("utf-8"))["items"]
        self.assertIn("lighthouse " + EVIL_STORED, [i["original_idea"] for i in items])

    def test_search_snippets_escape(self):
        bold, plain = b"\x1b[1m", b"\x1b[0m"
        code, out = self.tty("search", "pwned")
        self.assertEqual(code, 0, out)
        self.assertHarmless(out, allow=(bold, plain))
        self.assertIn(b"\\x1b]0;", out)
        r = self.ctl("search", "pwned")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertHarmless(r.stdout)
        self.assertIn(b"\\x1b]0;", r.stdout)
        r = self.ctl("--json", "search", "pwned")
        self.assertTrue(any("\x1b" in i["snippet"]
                            for i in json.loads(r.stdout.decode("utf-8"))["items"]))


class ErrorsAndLog(unittest.TestCase):
    """An upstream that answers an HTTP error whose body forges a log line
    and carries escapes."""

    MESSAGE = ("model overloaded\nERROR forged line \x1b]0;pwned\x07\x1b[2J"
               "\u009b31m\rdone")

    def daemon(self, url):
        return Daemon(config={"LLM_PROVIDER": "ollama", "LLM_BASE_URL": url,
                              "SQLITE_ENABLED": "false", "LOG_LEVEL": "debug"})

    def assertLogIsClean(self, log):
        self.assertNotIn(b"\x1b", log)
        self.assertIsNone(re.search(rb"\xc2[\x80-\x9f]", log))
        for line in log.split(b"\n"):
            self.assertFalse(line.startswith(b"ERROR forged"), line)
            self.assertFalse(b"\r" in line, line)
        self.assertIn(b"model overloaded\\nERROR forged line \\x1b]0;pwned\\x07", log)

    def test_a_json_error_body_stays_on_one_log_line(self):
        body = json.dumps({"error": self.MESSAGE}).encode()
        with HostileBackend(400, body) as up, self.daemon(up.url) as d:
            msg = d.call("improve", {"idea": IDEA})
            self.assertEqual(msg["error"]["data"]["detail"], self.MESSAGE)  # exact JSON
            # promptctl prints the message with escapes, piped and on a terminal
            r = promptctl(["--socket", d.socket, "improve", IDEA], env=d.env)
            self.assertEqual(r.returncode, 1)
            err = r.stderr.encode()
            self.assertIsNone(RAW_CONTROLS.search(err), err)
            # ... on one line: a forged "promptctl: ..." line cannot follow
            self.assertIn(b"overloaded\\nERROR forged line \\x1b]0;pwned\\x07\\x1b[2J\\u009b31m\\rdone",
                          err)
            self.assertEqual(err.count(b"\n"), 1, err)
            code, out = run_on_terminal(["--socket", d.socket, "improve", IDEA], d.env)
            self.assertEqual(code, 1, out)
            self.assertIsNone(RAW_CONTROLS.search(out), out)
            r = promptctl(["--socket", d.socket, "--json", "improve", IDEA], env=d.env)
            self.assertEqual(json.loads(r.stdout)["data"]["detail"], self.MESSAGE)
            self.assertIsNone(RAW_CONTROLS.search(r.stdout.encode()), r.stdout)
            log = open(d.log_path, "rb").read()
        self.assertLogIsClean(log)

    def test_a_raw_error_body_stays_on_one_log_line(self):
        # Not JSON: the daemon quotes the body itself, with a raw 8-bit CSI
        # byte (0x9B, not UTF-8) that an 8-bit terminal would obey.
        body = self.MESSAGE.encode() + b" \x9b2J tail"
        with HostileBackend(400, body, "text/plain") as up, self.daemon(up.url) as d:
            msg = d.call("improve", {"idea": IDEA})
            self.assertIn("error", msg)
            d.call("health")
            log = open(d.log_path, "rb").read()
        self.assertLogIsClean(log)
        self.assertNotIn(b"\x9b", log)


if __name__ == "__main__":
    unittest.main()
