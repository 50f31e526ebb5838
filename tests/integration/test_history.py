"""History through the real daemon: improve then get/list/search/stats,
read-your-writes, adoption of the Python backend's database, start-up
retention, the circuit breaker (read-only file, full disk), a corrupt file
moved aside, a newer database refused, persistence disabled, backup while
writes are in flight then restore into a fresh daemon, export round trip,
SIGTERM with a full queue, kill -9 during writes, privacy of deletes, and
promptctl's history commands.

Rows come from `improve` with the offline builtin provider, or are seeded
with Python's sqlite3 module before the daemon starts."""
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import ROOT, Daemon, promptctl, wait_for

LEGACY_SQL = os.path.join(ROOT, "tests", "fixtures", "legacy_prompt_history.sql")
IDEA = "email my landlord about the broken heater"


def db_path(home):
    return os.path.join(home, "data", "promptd", "prompt_history.db")


def builtin_daemon(**env):
    base = {"LLM_PROVIDER": "builtin"}
    base.update({k: str(v) for k, v in env.items()})
    return Daemon(env=base)


def seed_legacy(path, rows):
    """A database exactly as the Python backend left it, with rows:
    (timestamp, idea, prompt, backend, confidence, latency_ms, model)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    con = sqlite3.connect(path)
    with open(LEGACY_SQL) as f:
        con.executescript(f.read())
    con.executemany(
        "INSERT INTO prompt_history(timestamp, original_idea, context, improved_prompt, role, "
        "directive, framework, guardrails, backend, confidence, reasoning, latency_ms, "
        "model_version) VALUES (?, ?, '', ?, 'role', 'directive', 'framework', "
        "'[\"be kind\"]', ?, ?, NULL, ?, ?)", rows)
    con.commit()
    con.close()


def ts(seconds_ago):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - seconds_ago))


def prepare(d):
    """Starts and stops d once, so its database exists and is migrated;
    keeps its home (unlike `with d:`, which removes it)."""
    d.start()
    code = d.stop()
    assert code == 0, d.log()


def database(d):
    return d.call("health")["result"]["database"]


def settled(d):
    """Waits until the writer has no queued rows; returns health.database."""
    return wait_for(lambda: (lambda h: h if h["pending_writes"] == 0 else None)(database(d)))


def make_immutable(path, on):
    """A file even root cannot write: chattr +i as root, else chmod."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", path], check=True)
    else:
        os.chmod(path, 0o400 if on else 0o600)


def db_files(path):
    """The database and the files SQLite keeps next to it, those that exist."""
    return [f for f in (path, path + "-wal", path + "-shm") if os.path.exists(f)]


def make_db_writable(path):
    """Undoes make_immutable(path, True) as a user must: SQLite creates the
    -wal and -shm of a read-only database with its mode (0400 after chmod),
    so fixing the .db alone leaves the writer read-only."""
    for f in db_files(path):
        make_immutable(f, False)


def can_make_immutable(home):
    probe = os.path.join(home, "probe")
    open(probe, "w").close()
    try:
        make_immutable(probe, True)
    except (OSError, subprocess.CalledProcessError):
        return False
    try:
        with open(probe, "a") as f:
            f.write("x")
        return False
    except OSError:
        return True
    finally:
        make_immutable(probe, False)
        os.remove(probe)


class HistoryTestCase(unittest.TestCase):
    def improve(self, c, **params):
        params.setdefault("idea", IDEA)
        msg = c.call("improve", params)
        if msg.get("error", {}).get("code") == -32601:
            self.skipTest("improve is not available in this build")
        self.assertIn("result", msg, msg)
        return msg["result"]


class ImproveThenRead(HistoryTestCase):
    def test_improve_then_get_list_search_stats(self):
        with builtin_daemon() as d:
            c = d.client()
            r = self.improve(c, client="itest", context="the heater is in the bedroom")
            self.assertIsInstance(r["id"], int)
            row = c.result("history.get", {"id": r["id"]})
            for key in ("improved_prompt", "role", "directive", "framework", "guardrails",
                        "backend", "provider", "latency_ms", "quality_score"):
                self.assertEqual(row[key], r[key], key)
            self.assertEqual(row["original_idea"], IDEA)
            self.assertEqual(row["context"], "the heater is in the bedroom")
            self.assertEqual(row["client"], "itest")
            self.assertRegex(row["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            listed = c.result("history.list", {"limit": 5})
            self.assertEqual(listed["total"], 1)
            self.assertEqual(listed["items"][0]["id"], r["id"])
            found = c.result("history.search", {"query": "landlord heater"})
            self.assertEqual([i["id"] for i in found["items"]], [r["id"]])
            self.assertIn("\u00ab", found["items"][0]["snippet"])
            stats = c.result("stats")
            self.assertEqual(stats["total_count"], 1)
            self.assertEqual(stats["by_provider"]["builtin"]["count"], 1)
            self.assertEqual(stats["last_24h"], 1)
            c.close()

    def test_read_your_writes(self):
        """A read issued right after improve's response finds the row,
        whichever connection it comes from."""
        with builtin_daemon() as d:
            writer, reader = d.client(), d.client()
            for i in range(40):
                r = self.improve(writer, idea="idea number %d for the history" % i)
                got = reader.call("history.get", {"id": r["id"]})
                self.assertIn("result", got, got)
                found = reader.result("history.search", {"query": "number %d" % i})
                self.assertIn(r["id"], [x["id"] for x in found["items"]])
            self.assertEqual(reader.result("history.list")["total"], 40)
            self.assertEqual(reader.result("stats")["total_count"], 40)

    def test_refine_reads_the_parent(self):
        with builtin_daemon() as d:
            c = d.client()
            parent = self.improve(c)
            child = self.improve(c, idea="make it shorter and friendlier", parent_id=parent["id"])
            self.assertEqual(c.result("history.get", {"id": child["id"]})["parent_id"], parent["id"])
            bad = c.call("improve", {"idea": "refine a ghost entry", "parent_id": 999999})
            self.assertIn("error", bad)

    def test_record_false_stays_out(self):
        with builtin_daemon() as d:
            c = d.client()
            r = self.improve(c, record=False)
            self.assertIsNone(r["id"])
            self.assertEqual(c.result("history.list")["total"], 0)


class Methods(HistoryTestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        path = db_path(cls.d.home)
        seed_legacy(path, [
            ("2026-01-10 08:00:00", "email my landlord about the heater",
             "You are a tenant advisor. Heater heater.", "zero-shot", 0.8, 800, "llama3.2:3b"),
            ("2026-01-11T09:30:00", "plan a birthday party", "You are an event planner.",
             "few-shot", 0.9, 2000, "gpt-4o-mini"),
            ("2026-01-12 10:00:00", "write a haiku about rain-storms", "You are a poet.",
             "zero-shot", None, None, None),
        ])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0, code

    def call(self, method, params=None):
        return self.d.call(method, params)

    def error(self, method, params=None):
        msg = self.call(method, params)
        self.assertIn("error", msg, msg)
        return msg["error"]

    def test_legacy_rows_adopted(self):
        r = self.call("history.list")["result"]
        self.assertEqual(r["total"], 3)
        self.assertEqual([i["id"] for i in r["items"]], [3, 2, 1])
        self.assertEqual(r["items"][1]["timestamp"], "2026-01-11T09:30:00Z")
        self.assertEqual(r["items"][0]["guardrails"], ["be kind"])
        self.assertIsNone(r["items"][0]["provider"])
        self.assertAlmostEqual(r["items"][2]["quality_score"], 0.72, places=6)

    def test_list_filters(self):
        r = self.call("history.list", {"backend": "few-shot"})["result"]
        self.assertEqual([i["id"] for i in r["items"]], [2])
        r = self.call("history.list", {"since": "2026-01-11", "until": "2026-01-11"})["result"]
        self.assertEqual(r["total"], 1)
        r = self.call("history.list", {"since": "2026-01-11T09:30:00Z"})["result"]
        self.assertEqual(r["total"], 2)
        r = self.call("history.list", {"min_quality": 0.7})["result"]
        self.assertEqual(sorted(i["id"] for i in r["items"]), [1, 2])
        r = self.call("history.list", {"limit": 1, "offset": 1})["result"]
        self.assertEqual([i["id"] for i in r["items"]], [2])
        self.assertEqual(r["total"], 3)

    def test_param_errors_name_the_field(self):
        for params, field in (({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                              ({"offset": -1}, "offset"), ({"since": "yesterday"}, "since"),
                              ({"until": "2026-02-30"}, "until"),
                              ({"min_quality": 1.5}, "min_quality"), ({"backend": 3}, "backend")):
            e = self.error("history.list", params)
            self.assertEqual((e["code"], e["data"]["field"]), (-32602, field), params)
        self.assertEqual(self.error("history.get", {})["data"]["field"], "id")
        self.assertEqual(self.error("history.search", {})["data"]["field"], "query")
        self.assertEqual(self.error("history.search", {"query": "x", "limit": 501})["data"]["field"],
                         "limit")
        self.assertEqual(self.error("cleanup", {"days": -1})["data"]["field"], "days")
        self.assertEqual(self.error("db.backup", {"path": "relative.db"})["data"]["field"], "path")
        self.assertEqual(self.error("history.delete", {})["code"], -32602)
        self.assertEqual(self.error("history.delete", {"id": 1, "all": True})["code"], -32602)
        self.assertEqual(self.error("stats", {"since": "soon"})["data"]["field"], "since")

    def test_get_missing_is_not_found(self):
        e = self.error("history.get", {"id": 424242})
        self.assertEqual((e["code"], e["data"]["kind"]), (-32004, "not_found"))
        e = self.error("history.delete", {"id": 424242})
        self.assertEqual(e["code"], -32004)

    def test_search_any_text(self):
        r = self.call("history.search", {"query": "heater"})["result"]
        self.assertEqual([i["id"] for i in r["items"]], [1])
        r = self.call("history.search", {"query": "rain-storms"})["result"]
        self.assertEqual([i["id"] for i in r["items"]], [3])
        for q in ("-", "\"", "AND", "heater AND", "NOT OR", "NEAR(", "*", "(", "'", "a\"b", "",
                  "   ", "col:heater", "^x", "\u00e9t\u00e9 caf\u00e9"):
            msg = self.call("history.search", {"query": q})
            self.assertIn("result", msg, (q, msg))
        self.assertEqual(len(self.call("history.search", {"query": "heater", "limit": 1})
                             ["result"]["items"]), 1)

    def test_stats(self):
        s = self.call("stats")["result"]
        self.assertEqual(s["total_count"], 3)
        self.assertEqual(s["by_backend"]["zero-shot"]["count"], 2)
        self.assertEqual(s["by_provider"]["unknown"]["count"], 3)
        self.assertEqual(s["p50_latency_ms"], 800)
        self.assertEqual(s["p95_latency_ms"], 2000)
        self.assertAlmostEqual(s["average_confidence"], 0.85)
        s = self.call("stats", {"since": "2026-01-11T12:00:00Z"})["result"]
        self.assertEqual(s["total_count"], 1)
        self.assertEqual(s["since"], "2026-01-11T12:00:00Z")

    def test_check(self):
        self.assertEqual(self.call("db.check")["result"], {"ok": True, "detail": "ok"})

    def test_health_database(self):
        h = database(self.d)
        self.assertEqual(h["status"], "healthy")
        self.assertEqual(h["path"], db_path(self.d.home))
        self.assertEqual(h["total_records"], 3)
        self.assertGreater(h["size_bytes"], 0)
        for key in ("average_confidence", "average_latency_ms", "pending_writes",
                    "dropped_writes", "failures"):
            self.assertIn(key, h)
        self.assertEqual(os.stat(db_path(self.d.home)).st_mode & 0o777, 0o600)


class Retention(HistoryTestCase):
    def test_startup_cleanup_of_old_rows(self):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=30)
        old = [(ts(40 * 86400 + i), "ancient idea %d" % i, "old prompt", "zero-shot", 0.5, 10,
                "m") for i in range(3000)]
        new = [(ts(86400), "recent idea", "new prompt", "zero-shot", 0.5, 10, "m")]
        seed_legacy(db_path(d.home), old + new)
        with d:
            wait_for(lambda: database(d)["total_records"] == 1)
            self.assertEqual(d.call("history.list")["result"]["total"], 1)
            self.assertEqual(d.call("history.search", {"query": "ancient"})["result"]["items"], [])
            wait_for(lambda: "retention: deleted 3000 history rows older than 30 days" in d.log())

    def test_no_cleanup_when_disabled(self):
        d = builtin_daemon(SQLITE_AUTO_CLEANUP="false")
        seed_legacy(db_path(d.home), [(ts(400 * 86400), "old", "p", "zero-shot", 0.5, 1, "m")])
        with d:
            time.sleep(0.3)
            self.assertEqual(d.call("history.list")["result"]["total"], 1)

    def test_cleanup_and_deletes(self):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        rows = [(ts(10 * 86400), "ten days ago", "p", "zero-shot", 0.5, 1, "m")] * 5 + \
               [(ts(3600), "an hour ago", "p", "zero-shot", 0.5, 1, "m")] * 3
        seed_legacy(db_path(d.home), rows)
        with d:
            self.assertEqual(d.call("cleanup", {"days": 5})["result"], {"deleted": 5})
            self.assertEqual(d.call("history.delete", {"id": 7})["result"], {"deleted": 1})
            before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
            self.assertEqual(d.call("history.delete", {"before": before})["result"],
                             {"deleted": 2})
            self.assertEqual(d.call("history.list")["result"]["total"], 0)
            self.assertEqual(database(d)["total_records"], 0)


class Privacy(HistoryTestCase):
    def test_deleted_text_leaves_the_files(self):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        marker = "zebracornmarker"
        seed_legacy(db_path(d.home), [(ts(60), "%s idea %d" % (marker, i), "prompt about %s" % marker,
                                       "zero-shot", 0.5, 1, "m") for i in range(200)])
        with d:
            self.assertEqual(len(d.call("history.search", {"query": marker})["result"]["items"]), 20)
            self.assertEqual(d.call("history.delete", {"all": True})["result"], {"deleted": 200})
            self.assertEqual(d.call("history.search", {"query": marker})["result"]["items"], [])
            path = db_path(d.home)
            for suffix in ("", "-wal"):
                if os.path.exists(path + suffix):
                    with open(path + suffix, "rb") as f:
                        self.assertNotIn(marker.encode(), f.read(), suffix)


class Failures(HistoryTestCase):
    def test_persistence_disabled(self):
        with builtin_daemon(SQLITE_ENABLED="false") as d:
            c = d.client()
            for method, params in (("history.list", {}), ("history.get", {"id": 1}),
                                   ("history.search", {"query": "x"}), ("stats", {}),
                                   ("cleanup", {"days": 1}), ("db.check", {}),
                                   ("history.delete", {"all": True})):
                e = c.call(method, params)["error"]
                self.assertEqual((e["code"], e["data"]["kind"]), (-32006, "persistence_disabled"))
                self.assertIn("SQLITE_ENABLED", e["message"])
            self.assertEqual(database(d)["status"], "disabled")
            r = self.improve(c)
            self.assertIsNone(r["id"])
            self.assertFalse(os.path.exists(db_path(d.home)))

    def test_newer_database_refused(self):
        d = builtin_daemon()
        path = db_path(d.home)
        os.makedirs(os.path.dirname(path), mode=0o700)
        con = sqlite3.connect(path)
        con.executescript(open(LEGACY_SQL).read() + "PRAGMA user_version = 9999;")
        con.close()
        try:
            d.start(wait=False)
            self.assertEqual(d.proc.wait(15), 1)
            d.proc = None
            d.log_file.close()
            self.assertIn("newer promptd", d.log())
            con = sqlite3.connect(path)
            self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], 9999)
            self.assertEqual(con.execute("PRAGMA journal_mode").fetchone()[0], "delete")
            con.close()
        finally:
            d.cleanup()

    def test_foreign_file_moved_aside(self):
        d = builtin_daemon()
        path = db_path(d.home)
        os.makedirs(os.path.dirname(path), mode=0o700)
        with open(path, "w") as f:
            f.write("this is a text file, not a database\n" * 10)
        with d:
            h = database(d)
            self.assertEqual(h["status"], "healthy")
            moved = h["corrupt_moved_to"]
            self.assertTrue(moved.startswith(path + ".corrupt-"), moved)
            with open(moved) as f:
                self.assertIn("not a database", f.read())
            self.assertIn("not a SQLite database", d.log())
            self.assertEqual(d.call("history.list")["result"]["total"], 0)

    def test_corrupt_pages_found_by_quick_check(self):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        path = db_path(d.home)
        seed_legacy(path, [(ts(60), "idea %d " % i + "x" * 400, "prompt " + "y" * 800,
                            "zero-shot", 0.5, 1, "m") for i in range(2000)])
        prepare(d)  # migrated once, cleanly
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for offset in range(size // 3, size // 3 + 16 * 4096, 4096):
                f.seek(offset + 8)
                f.write(os.urandom(2000))
        d2 = Daemon(env=dict(d.env), home=d.home)
        try:
            d2.start()
            h = wait_for(lambda: (lambda x: x if x.get("corrupt_moved_to") else None)(database(d2)))
            self.assertTrue(os.path.exists(h["corrupt_moved_to"]))
            self.assertIn("quick_check failed", d2.log())
            self.assertEqual(d2.call("history.list")["result"]["total"], 0)
            self.assertEqual(d2.call("db.check")["result"]["ok"], True)
            self.assertEqual(d2.stop(), 0)
        finally:
            d2.cleanup()
            d.cleanup()

    def breaker(self, d, fail, repair, pause_s):
        c = d.client()
        r = self.improve(c, **fail(0))
        self.assertIsInstance(r["id"], int)  # accepted: the disk is behind the queue
        # The failed row is kept and tried again, until five failures open
        # the circuit; then it is dropped.
        h = wait_for(lambda: (lambda x: x if x["status"] == "circuit_open" else None)(
            database(d)), 20, what="an open circuit")
        self.assertGreaterEqual(h["failures"], 5)
        self.assertEqual(h["dropped_writes"], 1)
        self.assertEqual(h["pending_writes"], 0)
        self.assertTrue(h["last_error"])
        self.assertEqual(d.call("health")["result"]["status"], "degraded")
        r = self.improve(c)  # improve keeps answering, with id null
        self.assertIsNone(r["id"])
        repair()
        time.sleep(pause_s + 0.2)
        r = self.improve(c, idea="after the pause, a small one")
        self.assertIsInstance(r["id"], int)
        h = settled(d)
        self.assertEqual(h["status"], "healthy", h)
        self.assertEqual(c.result("history.get", {"id": r["id"]})["original_idea"],
                         "after the pause, a small one")
        self.assertIn("persistence resumed", d.log())

    def test_circuit_breaker_read_only_file(self):
        d = builtin_daemon(PROMPTD_TEST_CIRCUIT_PAUSE_MS=1500)
        if not can_make_immutable(d.home):
            d.cleanup()
            self.skipTest("cannot make a file read-only for this user")
        prepare(d)
        path = db_path(d.home)
        d2 = Daemon(env=dict(d.env), home=d.home)
        make_immutable(path, True)

        def repair():
            # The sentence names every file that cannot be written, with the
            # command that fixes it: after chmod, the -wal SQLite created
            # read-only too (as root, chattr +i marks the .db alone).
            error = database(d2)["last_error"]
            wal = path + "-wal"
            if os.path.exists(wal) and not os.access(wal, os.W_OK):
                self.assertIn(wal, error)
                self.assertIn("chmod 600 " + path + " " + wal, error)
            make_db_writable(path)

        try:
            d2.start()
            self.breaker(d2, lambda i: {"idea": "read-only attempt %d" % i}, repair, 1.5)
            self.assertIn("read-only", d2.log())
            self.assertEqual(d2.stop(), 0)
        finally:
            make_db_writable(path)
            d2.cleanup()
            d.cleanup()

    def test_circuit_breaker_full_disk(self):
        d = builtin_daemon()
        prepare(d)  # how big is an empty database, in its own pages?
        con = sqlite3.connect(db_path(d.home))
        pages, page_size = (con.execute("PRAGMA " + p).fetchone()[0]
                            for p in ("page_count", "page_size"))
        con.close()
        d.cleanup()
        # 64 KiB of room (new databases have 16 KiB pages): a small row fits,
        # a 96 KB one does not.
        big = "lots of context " * 6000
        with builtin_daemon(PROMPTD_TEST_MAX_PAGE_COUNT=pages + 65536 // page_size,
                            PROMPTD_TEST_CIRCUIT_PAUSE_MS=1000) as d:
            self.breaker(d, lambda i: {"context": big}, lambda: None, 1.0)
            self.assertIn("disk is full", d.log())


class Locked(HistoryTestCase):
    def test_a_locked_database_fails_reads_clearly_and_the_loop_stays_free(self):
        """Rollback-journal mode, another process holding an exclusive lock:
        a read waits out its busy timeout on the thread pool and answers
        storage_error naming the lock; ping answers meanwhile."""
        d = builtin_daemon(SQLITE_WAL_MODE="false", SQLITE_RETENTION_DAYS=0)
        seed_legacy(db_path(d.home), [(ts(60), "locked idea", "p", "zero-shot", 0.5, 1, "m")])
        with d:
            self.assertEqual(d.call("history.list")["result"]["total"], 1)
            blocker = sqlite3.connect(db_path(d.home), isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            slow, fast = d.client(timeout=30), d.client()
            rid = slow.request("history.list")
            time.sleep(0.2)
            t0 = time.monotonic()
            self.assertEqual(fast.call("ping")["result"], "pong")
            self.assertLess(time.monotonic() - t0, 0.5)
            e = slow.response(rid)["error"]
            self.assertEqual((e["code"], e["data"]["kind"]), (-32007, "storage_error"))
            self.assertIn("locked", e["message"])
            blocker.execute("ROLLBACK")
            blocker.close()
            self.assertEqual(slow.result("history.list")["total"], 1)


class BackupRestore(HistoryTestCase):
    def test_backup_while_writes_in_flight_then_restore(self):
        backup = None
        ids = []
        with builtin_daemon() as d:
            c = d.client(timeout=60)
            sent = [c.request("improve", {"idea": "backup row %d with words" % i})
                    for i in range(1000)]
            for rid in sent:
                msg = c.response(rid)
                if msg.get("error", {}).get("code") == -32601:
                    self.skipTest("improve is not available in this build")
                ids.append(msg["result"]["id"])
            backup = os.path.join(d.home, "backup.db")
            r = c.result("db.backup", {"path": backup})  # rows may still be queued
            self.assertEqual(r["rows"], 1000)
            self.assertEqual(r["path"], backup)
            self.assertEqual(r["bytes"], os.path.getsize(backup))
            self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)
            con = sqlite3.connect(backup)
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            con.close()
            with builtin_daemon() as fresh:
                f = fresh.client()
                self.assertEqual(f.result("db.restore", {"path": backup}), {"rows": 1000})
                listed = f.result("history.list", {"limit": 500})
                self.assertEqual(listed["total"], 1000)
                got = set()
                for offset in (0, 500):
                    page = f.result("history.list", {"limit": 500, "offset": offset})
                    got.update(i["id"] for i in page["items"])
                self.assertEqual(got, set(ids))
                self.assertEqual(len(f.result("history.search", {"query": "backup row"})["items"]),
                                 20)
                self.assertEqual(f.result("stats")["total_count"], 1000)
                # New rows come after the restored ones.
                r = self.improve(f)
                self.assertGreater(r["id"], max(ids))

    def test_restore_refuses_bad_files(self):
        with builtin_daemon() as d:
            junk = os.path.join(d.home, "junk.db")
            with open(junk, "w") as f:
                f.write("not sqlite at all" * 100)
            for path in (junk, os.path.join(d.home, "missing.db")):
                e = d.call("db.restore", {"path": path})["error"]
                self.assertEqual((e["code"], e["data"]["field"]), (-32602, "path"), e)
            other = os.path.join(d.home, "other.db")
            con = sqlite3.connect(other)
            con.execute("CREATE TABLE notes(x)")
            con.commit()
            con.close()
            e = d.call("db.restore", {"path": other})["error"]
            self.assertIn("not a prompt history", e["message"])

    def test_restore_legacy_database(self):
        with builtin_daemon(SQLITE_RETENTION_DAYS=0) as d:
            legacy = os.path.join(d.home, "legacy.db")
            seed_legacy(legacy, [(ts(60), "legacy idea %d" % i, "p", "zero-shot", 0.5, 10, "m")
                                 for i in range(25)])
            self.assertEqual(d.call("db.restore", {"path": legacy})["result"], {"rows": 25})
            self.assertEqual(d.call("history.list")["result"]["total"], 25)
            self.assertEqual(len(d.call("history.search", {"query": "legacy"})["result"]["items"]),
                             20)


class Durability(HistoryTestCase):
    def pipeline(self, c, n, prefix):
        ids = []
        sent = [c.request("improve", {"idea": "%s %d for durability" % (prefix, i)})
                for i in range(n)]
        for rid in sent:
            msg = c.response(rid)
            if msg.get("error", {}).get("code") == -32601:
                self.skipTest("improve is not available in this build")
            ids.append(msg["result"]["id"])
        return ids

    def test_sigterm_with_a_full_queue_loses_no_row(self):
        d = builtin_daemon()
        try:
            d.start()
            c = d.client(timeout=120)
            ids = self.pipeline(c, 3000, "queued")
            self.assertNotIn(None, ids)
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            con = sqlite3.connect(db_path(d.home))
            stored = {r[0] for r in con.execute("SELECT id FROM prompt_history")}
            con.close()
            self.assertEqual(stored, set(ids))
        finally:
            d.cleanup()

    def test_sigterm_while_the_writer_is_held_loses_no_row(self):
        """Another process holds the write lock: improve keeps answering,
        rows queue up; SIGTERM arrives; the lock goes; every row lands."""
        d = builtin_daemon()
        try:
            prepare(d)
            d.start()
            blocker = sqlite3.connect(db_path(d.home), isolation_level=None, timeout=10)
            blocker.execute("BEGIN IMMEDIATE")
            c = d.client(timeout=120)
            t0 = time.monotonic()
            ids = self.pipeline(c, 2000, "held")
            self.assertLess(time.monotonic() - t0, 4.0)  # nothing waited for the disk
            self.assertGreater(database(d)["pending_writes"], 0)
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            blocker.execute("ROLLBACK")
            blocker.close()
            self.assertEqual(d.stop(), 0)
            con = sqlite3.connect(db_path(d.home))
            stored = {r[0] for r in con.execute("SELECT id FROM prompt_history")}
            con.close()
            self.assertEqual(stored, set(ids))
        finally:
            d.cleanup()

    def test_kill9_during_writes_leaves_a_sound_database(self):
        d = builtin_daemon()
        try:
            d.start()
            stop = threading.Event()

            def hammer():
                try:
                    c = d.client(timeout=30)
                    while not stop.is_set():
                        for _ in range(50):
                            c.request("improve", {"idea": "hammer the writer with rows"})
                        for _ in range(50):
                            c.recv()
                except (OSError, ConnectionError, ValueError):
                    pass

            threads = [threading.Thread(target=hammer) for _ in range(3)]
            for t in threads:
                t.start()
            wait_for(lambda: database(d)["total_records"] > 500, timeout=60)
            d.proc.kill()
            d.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            d.proc = None
            d.log_file.close()
            con = sqlite3.connect(db_path(d.home))
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            con.execute("INSERT INTO prompt_history_fts(prompt_history_fts) "
                        "VALUES ('integrity-check')")
            con.close()
            d2 = Daemon(env=dict(d.env), home=d.home)
            with d2:
                self.assertEqual(d2.call("db.check")["result"]["ok"], True)
        finally:
            d.cleanup()

    def test_wal_stays_bounded(self):
        with builtin_daemon() as d:
            c = d.client(timeout=120)
            self.pipeline(c, 2000, "wal")
            settled(d)
            time.sleep(1.5)  # an idle moment: the writer checkpoints
            wal = db_path(d.home) + "-wal"
            size = os.path.getsize(wal) if os.path.exists(wal) else 0
            self.assertLess(size, 64 * 1024 * 1024 + 1024 * 1024)


class Promptctl(HistoryTestCase):
    def ctl(self, d, *args, check=True):
        p = promptctl(["--socket", d.socket] + list(args), env=d.env)
        if check:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def test_commands(self):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        seed_legacy(db_path(d.home), [
            (ts(3600 * (10 - i)), "idea %d about gardening, \"quoted\", comma" % i,
             "You are a gardener.\nLine two, with \"quotes\".", "zero-shot" if i % 2 else "few-shot",
             0.5 + i / 100, 100 * i, "m") for i in range(1, 8)])
        with d:
            out = self.ctl(d, "history", "-n", "3").stdout.splitlines()
            self.assertEqual(len(out), 3)
            self.assertEqual(out[0].split("\t")[0], "7")
            self.assertIn("idea 7 about gardening", out[0])
            j = json.loads(self.ctl(d, "history", "--backend", "few-shot", "--json").stdout)
            self.assertEqual(j["total"], 3)
            shown = self.ctl(d, "show", "3").stdout
            self.assertIn("You are a gardener.", shown)
            self.assertIn("idea 3 about gardening", shown)
            self.assertEqual(self.ctl(d, "show", "999", check=False).returncode, 1)
            found = self.ctl(d, "search", "gardening", "-n", "2").stdout.splitlines()
            self.assertEqual(len(found), 2)
            self.assertIn("\u00ab", found[0])
            stats = self.ctl(d, "stats").stdout
            self.assertIn("entries       7", stats)
            self.assertIn("zero-shot", stats)
            self.assertIn("ok", self.ctl(d, "db", "check").stdout)

            # export round trip: every row, every field, in both formats.
            listed = []
            for offset in (0,):
                listed += d.call("history.list", {"limit": 500, "offset": offset})["result"]["items"]
            out = os.path.join(d.home, "export.jsonl")
            self.ctl(d, "export", "--output", out)
            self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
            with open(out) as f:
                exported = [json.loads(line) for line in f]
            self.assertEqual(exported, listed)
            text = self.ctl(d, "export", "--format", "csv").stdout
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
            self.assertEqual(len(rows), 7)
            for row, orig in zip(rows, listed):
                self.assertEqual(int(row["id"]), orig["id"])
                self.assertEqual(row["original_idea"], orig["original_idea"])
                self.assertEqual(row["improved_prompt"], orig["improved_prompt"])
                self.assertEqual(json.loads(row["guardrails"]), orig["guardrails"])

            backup = os.path.join(d.home, "b.db")
            self.assertIn("backed up 7 entries", self.ctl(d, "db", "backup", backup).stdout)
            self.assertIn("deleted 1", self.ctl(d, "rm", "7").stdout)
            self.assertEqual(self.ctl(d, "rm", "--all", check=False).returncode, 2)
            self.assertIn("deleted 6", self.ctl(d, "rm", "--all", "--yes").stdout)
            self.assertIn("restored 7 entries", self.ctl(d, "db", "restore", backup).stdout)
            self.assertIn("deleted 0", self.ctl(d, "cleanup", "--days", "30").stdout)
            self.assertEqual(self.ctl(d, "history", "--since", "nonsense", check=False).returncode,
                             1)
            self.assertEqual(self.ctl(d, "history", "-n", "0", check=False).returncode, 2)


if __name__ == "__main__":
    unittest.main()
