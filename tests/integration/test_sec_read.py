"""Reading the history under attack (issue 11, items 13, 14 and 19).

13: history.search's query is bounded (bytes and distinct words, one
    below and one above each bound), repeated words count once, and
    `cancel` stops a costly search on its reader connection, so the
    thread pool is free for the next call.
14: pages are bounded by bytes as well as rows (`truncated: true`), so
    rows near the upstream cap page through `promptctl history`,
    `--json history` and `export`; export writes a temporary file and
    renames it only when complete; model-written fields are bounded when
    stored (a larger field is refused as bad model output).
19: CSV export neutralises cells that a spreadsheet would evaluate.

Rows are seeded with Python's sqlite3 module into a database the daemon
created (its triggers fill the search index), or come from `improve`
against tests/fakes/fake_llm.py."""
import csv
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import PROMPTCTL, Daemon, promptctl, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_llm import DEFAULT_RESULT, FakeLLM  # noqa: E402

# Mirrors of include/promptd_limits.h.
QUERY_MAX_BYTES = 1024
QUERY_MAX_TERMS = 16
FIELD_MAX_BYTES = 256 * 1024
PAGE_MAX_BYTES = 4 * 1024 * 1024
# promptctl's line cap (client/cli/ctl_io.c): the old pages went past it.
CTL_MAX_LINE = 64 * 1024 * 1024


def db_path(home):
    return os.path.join(home, "data", "promptd", "prompt_history.db")


def builtin_daemon(**env):
    base = {"LLM_PROVIDER": "builtin"}
    base.update({k: str(v) for k, v in env.items()})
    return Daemon(env=base)


def prepare(d):
    """Starts and stops d once, so its database exists and is migrated."""
    d.start()
    code = d.stop()
    assert code == 0, d.log()


def seed(d, rows):
    """Inserts rows (idea, improved_prompt) into d's stopped database."""
    con = sqlite3.connect(db_path(d.home))
    con.executemany(
        "INSERT INTO prompt_history(timestamp, original_idea, context, improved_prompt, role, "
        "directive, framework, guardrails, backend, confidence, reasoning, latency_ms) "
        "VALUES (datetime('now', ?), ?, '', ?, 'role', 'directive', 'framework', "
        "'[\"be kind\"]', 'zero-shot', 0.5, 'why', 10)",
        [("-%d seconds" % (len(rows) - i), idea, prompt)
         for i, (idea, prompt) in enumerate(rows)])
    con.commit()
    con.close()


def ctl(d, *args, **kw):
    return promptctl(["--socket", d.socket] + list(args), env=d.env, **kw)


def error_of(msg):
    assert "error" in msg, "expected an error, got %r" % (str(msg)[:300],)
    return msg["error"]


class SearchQueryBounds(unittest.TestCase):
    """Item 13: the query's size and its words are bounded and deduped."""

    @classmethod
    def setUpClass(cls):
        cls.d = builtin_daemon()
        prepare(cls.d)
        seed(cls.d, [("email my landlord about the broken heater", "Write to the landlord."),
                     ("plan a birthday party", "Plan it.")])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def search(self, query):
        return self.d.call("history.search", {"query": query})

    def assert_refused(self, msg, words):
        e = error_of(msg)
        self.assertEqual(e["code"], -32602, e)
        self.assertEqual(e["data"]["field"], "query", e)
        self.assertIn(words, e["message"])
        self.assertTrue(e["message"].endswith("."), e["message"])

    def test_query_bytes_one_below_and_one_above(self):
        # One word padded with spaces: only the byte count differs.
        at = "heater" + " " * (QUERY_MAX_BYTES - 6)
        r = self.search(at)
        self.assertNotIn("error", r, r)
        self.assertEqual(len(r["result"]["items"]), 1)
        self.assert_refused(self.search(at + " "), "%d bytes" % QUERY_MAX_BYTES)

    def test_distinct_words_one_below_and_one_above(self):
        words = ["heater"] + ["w%02d" % i for i in range(QUERY_MAX_TERMS - 1)]
        r = self.search(" ".join(words))
        self.assertNotIn("error", r, r)
        self.assertEqual(r["result"]["items"], [])
        self.assert_refused(self.search(" ".join(words + ["one-more"])),
                            "%d different words" % QUERY_MAX_TERMS)

    def test_repeated_word_counts_once(self):
        # The 2000-fold repeat is past the byte bound...
        self.assert_refused(self.search(" ".join(["heater"] * 2000)), "bytes")
        # ...and within it, a word repeated past the word bound is one word.
        single = self.search("heater")["result"]["items"]
        repeated = self.search(" ".join(["heater"] * 140))
        self.assertNotIn("error", repeated, repeated)
        self.assertEqual([i["id"] for i in repeated["result"]["items"]],
                         [i["id"] for i in single])
        self.assertEqual(len(single), 1)
        # Case does not make a new word (the index folds case).
        r = self.search(" ".join(["Heater", "HEATER"] * 40 + ["heater"]))
        self.assertEqual(len(r["result"]["items"]), 1, r)

    def test_promptctl_search_says_why(self):
        p = ctl(self.d, "search", *["w%02d" % i for i in range(QUERY_MAX_TERMS + 1)])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("different words", p.stderr)


class CancelStopsTheSearch(unittest.TestCase):
    """Item 13: `cancel` interrupts the running statement. Four costly
    searches (allowed: 16 distinct words, each in every row many times;
    the snippets cost the CPU) fill the four pool threads; once they are
    cancelled, history.list answers at once instead of after them."""

    WORDS = ["alpha%s" % chr(97 + i) for i in range(QUERY_MAX_TERMS)]

    def test_cancelled_searches_free_the_pool(self):
        d = builtin_daemon(UV_THREADPOOL_SIZE=4)
        try:
            prepare(d)
            text = " ".join(self.WORDS * 200)
            seed(d, [("idea %d" % i, text) for i in range(500)])
            d.start()
            c = d.client(timeout=30)
            query = {"query": " ".join(self.WORDS), "limit": 500}
            ids = [c.request("history.search", query) for _ in range(4)]
            time.sleep(0.5)  # let them reach the pool threads
            for rid in ids:
                r = c.result("cancel", {"request_id": rid})
                self.assertTrue(r["cancelled"], r)
                e = error_of(c.response(rid))
                self.assertEqual(e["code"], -32800, e)
            # The pool is free: without the interrupt these searches run
            # on for minutes and this call waits behind them.
            other = d.client(timeout=20)
            r = other.result("history.list", {"limit": 1})
            self.assertEqual(r["total"], 500)
            # The readers came back whole: a search still works.
            r = other.result("history.search", {"query": "idea", "limit": 1})
            self.assertEqual(len(r["items"]), 1)
            other.close()
            c.close()
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


class BigRowsPageByBytes(unittest.TestCase):
    """Item 14: rows near the 8 MiB upstream cap (a legacy or restored
    database may hold them) page through every reader."""

    ROWS = 9
    ROW_BYTES = 7_900_000  # nine of them pass promptctl's 64 MiB line cap

    @classmethod
    def setUpClass(cls):
        cls.d = builtin_daemon()
        prepare(cls.d)
        seed(cls.d, [("big idea %d" % i, chr(ord("a") + i) * cls.ROW_BYTES)
                     for i in range(cls.ROWS)])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def test_page_stops_at_the_byte_budget_and_says_so(self):
        c = self.d.client(timeout=60)
        rid = c.request("history.list", {"limit": 500})
        line = c.recv_line()
        msg = json.loads(line)
        self.assertEqual(msg["id"], rid)
        r = msg["result"]
        self.assertEqual(r["total"], self.ROWS)
        self.assertTrue(r["truncated"], {k: v for k, v in r.items() if k != "items"})
        self.assertEqual(len(r["items"]), 1)  # each row alone is past the budget
        self.assertLess(len(line), CTL_MAX_LINE)
        # Paging on by the items received reaches every row once.
        seen, offset = [], 0
        while True:
            r = c.result("history.list", {"limit": 500, "offset": offset})
            seen += [i["id"] for i in r["items"]]
            offset += len(r["items"])
            if not r.get("truncated"):
                break
        self.assertEqual(len(seen), self.ROWS)
        self.assertEqual(len(set(seen)), self.ROWS)
        # Small rows still come as one page, without the flag.
        r = c.result("history.list", {"limit": 2, "offset": self.ROWS - 1})
        self.assertNotIn("truncated", r)
        c.close()

    def test_search_page_is_bounded_too(self):
        r = self.d.call("history.search", {"query": "big idea", "limit": 500}, timeout=60)
        self.assertNotIn("error", r, str(r)[:300])
        self.assertTrue(r["result"]["truncated"])
        self.assertEqual(len(r["result"]["items"]), 1)

    def test_promptctl_history_and_json_history(self):
        p = ctl(self.d, "history", "-n", "500", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout[:500])
        p = ctl(self.d, "--json", "history", "-n", "500", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["total"], self.ROWS)
        self.assertTrue(r["truncated"])

    def test_export_is_complete_in_both_formats(self):
        with tempfile.TemporaryDirectory(dir=self.d.home) as tmp:
            out = os.path.join(tmp, "all.jsonl")
            p = ctl(self.d, "export", "--output", out, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("exported %d entries" % self.ROWS, p.stderr)
            with open(out) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual(len(rows), self.ROWS)
            self.assertEqual(sorted(r["original_idea"] for r in rows),
                             ["big idea %d" % i for i in range(self.ROWS)])
            for r in rows:
                i = int(r["original_idea"].split()[-1])
                self.assertEqual(r["improved_prompt"], chr(ord("a") + i) * self.ROW_BYTES)
            self.assertEqual(os.listdir(tmp), ["all.jsonl"])  # no temporary left
            out = os.path.join(tmp, "all.csv")
            p = ctl(self.d, "export", "--format", "csv", "--output", out, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            csv.field_size_limit(2 ** 30)
            with open(out, newline="") as f:
                table = list(csv.DictReader(f))
            self.assertEqual(len(table), self.ROWS)
            self.assertTrue(all(len(t["improved_prompt"]) == self.ROW_BYTES for t in table))


class FakeDaemon:
    """A socket that answers history.list's first page (truncated, one
    row) and then hangs up: an export that fails half-way."""

    def __init__(self, path, hang=False):
        self.path = path
        self.hang = hang  # never answer the second request: keep the client waiting
        self.conns = []
        self.requests = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            with conn:
                buf, answered = b"", 0
                while True:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        req = json.loads(line)
                        self.requests += 1
                        if answered and self.hang:
                            continue
                        if answered:
                            conn.close()
                            break
                        row = dict(DEFAULT_RESULT, id=2, timestamp="2026-01-01T00:00:00Z",
                                   original_idea="first half", context="", client=None)
                        res = {"jsonrpc": "2.0", "id": req["id"],
                               "result": {"items": [row], "total": 2, "truncated": True}}
                        conn.sendall(json.dumps(res).encode() + b"\n")
                        answered += 1
                    else:
                        continue
                    break

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class ExportNeverLeavesATruncatedFile(unittest.TestCase):
    """Item 14: a failed export leaves no file, and an existing file
    stays as it was."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pd-exp-", dir="/tmp")
        os.chmod(self.tmp, 0o700)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_daemon_hangs_up_half_way(self):
        sock = os.path.join(self.tmp, "fake.sock")
        fake = FakeDaemon(sock)
        try:
            out = os.path.join(self.tmp, "half.jsonl")
            p = promptctl(["--socket", sock, "export", "--output", out],
                          env={"PATH": os.environ.get("PATH", ""), "HOME": self.tmp})
            self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(sorted(os.listdir(self.tmp)), ["fake.sock"], p.stderr)
        finally:
            fake.close()

    def test_ctrl_c_removes_the_temporary_file(self):
        sock = os.path.join(self.tmp, "fake.sock")
        fake = FakeDaemon(sock, hang=True)
        out = os.path.join(self.tmp, "keep.jsonl")
        with open(out, "w") as f:
            f.write("yesterday's export\n")
        try:
            p = subprocess.Popen([PROMPTCTL, "--socket", sock, "export", "--output", out],
                                 env={"PATH": os.environ.get("PATH", ""), "HOME": self.tmp},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # The first page is written; the second never comes.
            wait_for(lambda: fake.requests >= 2, what="the second page asked for")
            self.assertTrue(any(".partial-" in n for n in os.listdir(self.tmp)))
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=10)  # closes its pipes
            self.assertEqual(p.returncode, -signal.SIGINT)
            self.assertEqual(sorted(os.listdir(self.tmp)), ["fake.sock", "keep.jsonl"])
            with open(out) as f:
                self.assertEqual(f.read(), "yesterday's export\n")
        finally:
            fake.close()

    def test_existing_file_survives_a_failed_export(self):
        with Daemon(env={"LLM_PROVIDER": "builtin", "SQLITE_ENABLED": "false"}) as d:
            out = os.path.join(self.tmp, "keep.csv")
            with open(out, "w") as f:
                f.write("yesterday's export\n")
            p = ctl(d, "export", "--format", "csv", "--output", out)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("SQLITE_ENABLED", p.stderr)
            with open(out) as f:
                self.assertEqual(f.read(), "yesterday's export\n")
            self.assertEqual(os.listdir(self.tmp), ["keep.csv"])


class StoredFieldBounds(unittest.TestCase):
    """Item 14: a model-written field past LIMIT_RESULT_FIELD_BYTES is bad
    model output: refused, not stored; one at the bound is kept whole."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeLLM("openai").start()
        cls.d = Daemon(config={"LLM_PROVIDER": "openai", "LLM_BASE_URL": cls.fake.url,
                               "OPENAI_API_KEY": "k-test", "LOG_LEVEL": "warn"}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.d.stop()
            cls.d.cleanup()
            assert code == 0
        finally:
            cls.fake.stop()

    def improve(self, **fields):
        self.fake.configure(api_key="k-test", result=dict(DEFAULT_RESULT, **fields))
        return self.d.call("improve", {"idea": "write a long poem about heaters"}, timeout=60)

    def total(self):
        return self.d.call("history.list", {"limit": 1})["result"]["total"]

    def test_improved_prompt_at_and_past_the_bound(self):
        before = self.total()
        at = "p" * FIELD_MAX_BYTES
        r = self.improve(improved_prompt=at)
        self.assertNotIn("error", r, str(r)[:300])
        row = self.d.call("history.get", {"id": r["result"]["id"]})["result"]
        self.assertEqual(row["improved_prompt"], at)
        r = self.improve(improved_prompt=at + "p")
        e = error_of(r)
        self.assertEqual(e["code"], -32003, e)
        self.assertEqual(e["data"]["kind"], "bad_model_output")
        self.assertIn("improved_prompt", e["message"])
        self.assertIn("256 KiB", e["message"])
        self.assertEqual(self.total(), before + 1)

    def test_other_model_fields_past_the_bound(self):
        before = self.total()
        for field, value in (("reasoning", "r" * (FIELD_MAX_BYTES + 1)),
                             ("role", "o" * (FIELD_MAX_BYTES + 1)),
                             ("guardrails", ["g" * (FIELD_MAX_BYTES + 1)])):
            e = error_of(self.improve(**{field: value}))
            self.assertEqual(e["code"], -32003, (field, e))
            self.assertIn(field, e["message"])
        self.assertEqual(self.total(), before)


class CsvExportNeutralisesFormulas(unittest.TestCase):
    """Item 19: cells starting with = + - @ tab or CR get a leading
    single quote (OWASP's advice); JSON Lines stay exact."""

    IDEAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3",
             "@SUM(A1:A2)", "\tindented idea", "\rcarriage idea", "plain idea",
             "a=b is fine inside", "  =1+1 after spaces", "\n=1+1 after a newline",
             "\uff1d1+1 full width", " \uff20SUM(A1) full width after a space"]

    @staticmethod
    def formula_like(cell):
        if cell[0] in "=+-@\t\r":
            return True
        rest = cell.lstrip(" \t\r\n")
        return rest[:1] in ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")

    def test_csv_cells_are_neutralised(self):
        d = builtin_daemon()
        try:
            prepare(d)
            seed(d, [(idea, "=cmd prompt" if i == 0 else "ok prompt")
                     for i, idea in enumerate(self.IDEAS)])
            d.start()
            out = os.path.join(d.home, "x.csv")  # a file: text mode would turn CR into LF
            p = ctl(d, "export", "--format", "csv", "--output", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, newline="") as f:
                text = f.read()
            table = list(csv.DictReader(io.StringIO(text, newline="")))
            got = {t["original_idea"] for t in table}
            want = {("'" + i if self.formula_like(i) else i) for i in self.IDEAS}
            self.assertEqual(got, want)
            self.assertIn("'=cmd prompt", {t["improved_prompt"] for t in table})
            # Every cell is quoted, the neutralised ones too.
            self.assertIn('"\'=HYPERLINK(""http://evil"",""x"")"', text)
            p = ctl(d, "export")
            self.assertEqual(p.returncode, 0, p.stderr)
            ideas = {json.loads(line)["original_idea"] for line in p.stdout.splitlines()}
            self.assertEqual(ideas, set(self.IDEAS))
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
