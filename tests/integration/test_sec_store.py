"""Issue 11, items 6-10, through the real daemon and promptctl: a hostile
file given to db.restore (triggers, views, foreign objects) imports only
rows; a FIFO or other odd file is refused at once; db.backup never replaces
the live database, a device, a directory or an unrelated file, and an old
backup only with overwrite; a request that answers "cancelled" changed
nothing (db.restore, history.delete, Ctrl-C on promptctl); a successful
restore closes an open circuit breaker."""
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from harness import PROMPTCTL, THREAD_SANITIZED, Daemon, promptctl, wait_for
from test_history import IDEA, builtin_daemon, db_path, prepare, seed_legacy, settled, ts

ROWS = 6  # rows in the good backup


def improve(c, idea):
    msg = c.call("improve", {"idea": idea})
    if msg.get("error", {}).get("code") == -32601:
        raise unittest.SkipTest("improve is not available in this build")
    assert "result" in msg, msg
    return msg["result"]


def all_ideas(d):
    out = []
    for offset in range(0, 100000, 500):
        page = d.call("history.list", {"limit": 500, "offset": offset})["result"]
        out += [i["original_idea"] for i in page["items"]]
        if offset + 500 >= page["total"]:
            return out


def schema_names(path):
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    finally:
        con.close()


class StoreTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """A good backup of ROWS rows made by the real daemon, and the
        schema objects a promptd database has."""
        cls.tmp = tempfile.mkdtemp(prefix="pd-sec-store-", dir="/tmp")
        cls.good = os.path.join(cls.tmp, "good.db")
        with builtin_daemon() as d:
            c = d.client()
            for i in range(ROWS):
                improve(c, "good row %d about tomatoes" % i)
            assert d.call("db.backup", {"path": cls.good})["result"]["rows"] == ROWS
            cls.our_names = schema_names(db_path(d.home))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def hostile(self, d, sql, name="hostile.db"):
        """A copy of the good backup with sql run on it."""
        path = os.path.join(d.home, name)
        shutil.copyfile(self.good, path)
        con = sqlite3.connect(path)
        con.executescript(sql)
        con.commit()
        con.close()
        return path

    def error(self, d, method, params, timeout=10):
        msg = d.call(method, params, timeout=timeout)
        self.assertIn("error", msg, msg)
        return msg["error"]


# ---- item 6: hostile schema objects in a restored file ---------------------

HOSTILE = {
    "rewrite_trigger": """
        CREATE TRIGGER evil_rewrite AFTER INSERT ON prompt_history BEGIN
            UPDATE prompt_history SET original_idea = 'PWNED', improved_prompt = 'PWNED'
             WHERE id = new.id;
        END;""",
    "wipe_trigger": """
        CREATE TRIGGER evil_wipe AFTER INSERT ON prompt_history BEGIN
            DELETE FROM prompt_history;
        END;""",
    "endless_trigger": """
        CREATE TRIGGER evil_loop AFTER INSERT ON prompt_history BEGIN
            SELECT count(*) FROM (WITH RECURSIVE c(x) AS (VALUES (1) UNION ALL
                                  SELECT x + 1 FROM c) SELECT x FROM c);
        END;""",
    "rollup_view": """
        DROP TABLE history_rollup;
        CREATE VIEW history_rollup AS SELECT '2020-01-01' AS day, 'zero-shot' AS backend,
            '' AS provider, '' AS model, 1000000 AS n, 0 AS n_conf, 0.0 AS sum_conf,
            0 AS n_lat, 0 AS sum_lat, 0.0 AS sum_quality;
        CREATE VIEW evil_view AS SELECT * FROM prompt_history;""",
    "function_trigger": """
        CREATE TRIGGER evil_fn AFTER INSERT ON prompt_history BEGIN
            SELECT load_extension('/nonexistent/evil.so');
        END;""",
    "foreign_objects": """
        CREATE TABLE evil_table(x);
        INSERT INTO evil_table VALUES ('kept?');
        CREATE INDEX evil_index ON prompt_history(role);
        CREATE TRIGGER evil_del BEFORE DELETE ON prompt_history BEGIN
            SELECT RAISE(ABORT, 'no deleting');
        END;""",
}


class HostileRestore(StoreTestCase):
    def check_restore(self, key):
        with builtin_daemon(SQLITE_RETENTION_DAYS=0) as d:
            c = d.client(timeout=20)
            path = self.hostile(d, HOSTILE[key])
            r = c.call("db.restore", {"path": path})
            self.assertEqual(r.get("result"), {"rows": ROWS}, r)
            ids = [improve(c, "after restore %d" % i)["id"] for i in range(5)]
            self.assertTrue(all(isinstance(i, int) for i in ids), ids)
            h = settled(d)
            self.assertEqual(h["status"], "healthy", h)
            self.assertEqual(h["dropped_writes"], 0, h)
            self.assertEqual(h["total_records"], ROWS + 5, h)
            ideas = all_ideas(d)
            self.assertEqual(sorted(ideas), sorted(["good row %d about tomatoes" % i
                                                    for i in range(ROWS)] +
                                                   ["after restore %d" % i for i in range(5)]))
            self.assertEqual(c.result("stats")["total_count"], ROWS + 5)
            # Nothing of the file's own schema survived.
            self.assertEqual(schema_names(db_path(d.home)), self.our_names)
            # Deletes work (no trigger of the file refuses them).
            self.assertEqual(c.result("history.delete", {"id": ids[0]}), {"deleted": 1})
            t0 = time.monotonic()
            self.assertEqual(d.stop(), 0)  # SIGTERM: the writer is not stuck
            self.assertLess(time.monotonic() - t0, 15)

    def test_trigger_that_rewrites_rows(self):
        self.check_restore("rewrite_trigger")

    def test_trigger_that_deletes_everything(self):
        self.check_restore("wipe_trigger")

    def test_endless_trigger(self):
        self.check_restore("endless_trigger")

    def test_views(self):
        self.check_restore("rollup_view")

    def test_trigger_that_calls_a_function(self):
        self.check_restore("function_trigger")

    def test_foreign_tables_indexes_and_triggers(self):
        self.check_restore("foreign_objects")

    def test_a_virtual_prompt_history_is_refused(self):
        with builtin_daemon() as d:
            path = os.path.join(d.home, "vt.db")
            con = sqlite3.connect(path)
            con.execute("CREATE VIRTUAL TABLE prompt_history USING fts5(id, timestamp, "
                        "original_idea, context, improved_prompt, role, directive, framework, "
                        "guardrails, backend, confidence, reasoning, latency_ms, model_version)")
            con.commit()
            con.close()
            e = self.error(d, "db.restore", {"path": path})
            self.assertEqual(e["code"], -32602, e)
            self.assertIn("cannot be restored", e["message"])
            self.assertEqual(d.call("history.list")["result"]["total"], 0)

    def test_legacy_file_still_restores(self):
        with builtin_daemon(SQLITE_RETENTION_DAYS=0) as d:
            legacy = os.path.join(d.home, "legacy.db")
            seed_legacy(legacy, [(ts(60), "legacy idea %d" % i, "p", "zero-shot", 0.5, 10, "m")
                                 for i in range(25)])
            con = sqlite3.connect(legacy)
            con.execute("CREATE TRIGGER evil AFTER INSERT ON prompt_history BEGIN "
                        "DELETE FROM prompt_history; END")
            con.commit()
            con.close()
            self.assertEqual(d.call("db.restore", {"path": legacy})["result"], {"rows": 25})
            c = d.client()
            improve(c, "one more")
            settled(d)
            self.assertEqual(d.call("history.list")["result"]["total"], 26)
            self.assertEqual(len(d.call("history.search", {"query": "legacy"})["result"]["items"]),
                             20)
            self.assertEqual(schema_names(db_path(d.home)), self.our_names)


class RestoreBounds(StoreTestCase):
    """A file promptd itself could never have written: padded with holes
    past the database its header describes, a row past the stored-field
    bounds (docs/limits.md), an id below 1. Each is refused before the
    live history changes, with the reason; nothing is left beside it."""

    def assertRefused(self, d, path, words):
        e = self.error(d, "db.restore", {"path": path}, timeout=30)
        self.assertEqual(e["code"], -32602, e)
        for w in words:
            self.assertIn(w, e["message"])
        self.assertEqual(d.call("history.list")["result"]["total"], 0)
        leftovers = [n for n in os.listdir(os.path.dirname(db_path(d.home)))
                     if "restore" in n]
        self.assertEqual(leftovers, [])

    def test_a_file_padded_with_holes_is_refused_before_it_is_copied(self):
        with builtin_daemon() as d:
            path = os.path.join(d.home, "sparse.db")
            shutil.copyfile(self.good, path)
            with open(path, "r+b") as f:
                f.truncate(3 << 30)  # 3 GiB apparent, a few KiB on disk
            self.assertRefused(d, path, ("sparse.db cannot be restored", "not a file SQLite"))

    def test_a_row_past_the_stored_field_bound_is_refused(self):
        with builtin_daemon() as d:
            path = self.hostile(d, "UPDATE prompt_history SET improved_prompt = "
                                   "printf('%.300000c', 'x') WHERE id = 2", "big.db")
            self.assertRefused(d, path, ("row 2's improved_prompt is 300000 bytes",
                                         "262144"))

    def test_a_field_at_the_bound_restores(self):
        with builtin_daemon() as d:
            path = self.hostile(d, "UPDATE prompt_history SET improved_prompt = "
                                   "printf('%.262144c', 'x') WHERE id = 2", "edge.db")
            self.assertEqual(d.call("db.restore", {"path": path})["result"], {"rows": ROWS})

    def test_an_id_below_1_is_refused(self):
        with builtin_daemon() as d:
            path = self.hostile(d, "UPDATE prompt_history SET id = -7 WHERE id = 3", "neg.db")
            self.assertRefused(d, path, ("row -7 has an id below 1",))


# ---- item 7: a FIFO given to db.restore / db.backup -------------------------

class OddFiles(StoreTestCase):
    def test_restore_of_a_fifo_answers_at_once(self):
        with builtin_daemon() as d:
            fifo = os.path.join(d.home, "fifo.db")
            os.mkfifo(fifo, 0o600)
            for _ in range(5):  # more than the thread pool has threads
                e = self.error(d, "db.restore", {"path": fifo})
                self.assertEqual((e["code"], e["data"]["field"]), (-32602, "path"), e)
                self.assertIn("not a regular file", e["message"])
            self.assertEqual(d.call("history.list")["result"]["total"], 0)
            self.assertEqual(d.call("stats")["result"]["total_count"], 0)
            self.assertEqual(d.stop(), 0)

    def test_restore_of_a_directory_is_refused(self):
        with builtin_daemon() as d:
            e = self.error(d, "db.restore", {"path": d.home})
            self.assertIn("not a regular file", e["message"])

    def test_backup_to_a_fifo_is_refused(self):
        with builtin_daemon() as d:
            fifo = os.path.join(d.home, "fifo.db")
            os.mkfifo(fifo, 0o600)
            e = self.error(d, "db.backup", {"path": fifo})
            self.assertEqual(e["data"]["field"], "path", e)
            self.assertIn("not a regular file", e["message"])
            self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
            self.assertEqual(d.stop(), 0)


# ---- item 8: what db.backup may replace --------------------------------------

class BackupTarget(StoreTestCase):
    def test_refuses_the_live_database_and_its_files(self):
        with builtin_daemon() as d:
            c = d.client()
            improve(c, "before the backup attempt")
            live = db_path(d.home)
            link = os.path.join(d.home, "link.db")
            os.symlink(live, link)
            dotted = os.path.join(os.path.dirname(live), "..", "promptd",
                                  os.path.basename(live))
            for path in (live, dotted, live + "-wal", live + "-shm", live + "-journal"):
                e = self.error(d, "db.backup", {"path": path})
                self.assertEqual(e["data"]["field"], "path", (path, e))
                self.assertIn("live", e["message"], path)
            e = self.error(d, "db.backup", {"path": link})
            self.assertIn("live", e["message"])
            self.assertTrue(os.path.islink(link))
            other = os.path.join(d.home, "other-link.db")
            os.symlink(os.path.join(d.home, "elsewhere.db"), other)
            e = self.error(d, "db.backup", {"path": other})
            self.assertIn("symbolic link", e["message"])
            self.assertFalse(os.path.exists(os.path.join(d.home, "elsewhere.db")))
            improve(c, "after the backup attempt")
            settled(d)
            self.assertEqual(d.stop(), 0)
            d.start()
            self.assertEqual(sorted(all_ideas(d)),
                             ["after the backup attempt", "before the backup attempt"])

    def test_refuses_devices_and_directories(self):
        with builtin_daemon() as d:
            targets = [d.home]
            if os.geteuid() == 0:
                node = os.path.join(d.home, "null")
                os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
                targets.append(node)
            else:
                print("SKIP part: not root, cannot make a device node")
            for path in targets:
                e = self.error(d, "db.backup", {"path": path})
                self.assertIn("not a regular file", e["message"], path)
            if len(targets) > 1:
                self.assertTrue(stat.S_ISCHR(os.lstat(targets[1]).st_mode))

    def test_never_replaces_unless_asked_and_only_a_database(self):
        with builtin_daemon() as d:
            c = d.client()
            improve(c, IDEA)
            notes = os.path.join(d.home, "notes.txt")
            with open(notes, "w") as f:
                f.write("my notes")
            for params in ({"path": notes}, {"path": notes, "overwrite": True}):
                e = self.error(d, "db.backup", params)
                self.assertEqual(e["data"]["field"], "path", e)
            with open(notes) as f:
                self.assertEqual(f.read(), "my notes")
            e = self.error(d, "db.backup", {"path": notes, "overwrite": "yes"})
            self.assertEqual(e["data"]["field"], "overwrite", e)

            old = os.path.join(d.home, "old.db")
            shutil.copyfile(self.good, old)
            e = self.error(d, "db.backup", {"path": old})
            self.assertIn("already exists", e["message"])
            self.assertIn("overwrite", e["message"])
            con = sqlite3.connect(old)
            self.assertEqual(con.execute("SELECT count(*) FROM prompt_history").fetchone()[0],
                             ROWS)
            con.close()
            r = d.call("db.backup", {"path": old, "overwrite": True})["result"]
            self.assertEqual(r["rows"], 1)
            self.assertEqual(os.stat(old).st_mode & 0o777, 0o600)
            self.assertEqual([n for n in os.listdir(d.home) if ".tmp-" in n], [])

            new = os.path.join(d.home, "new.db")
            self.assertEqual(d.call("db.backup", {"path": new})["result"]["rows"], 1)

    def test_promptctl_force(self):
        with builtin_daemon() as d:
            improve(d.client(), IDEA)
            old = os.path.join(d.home, "old.db")
            shutil.copyfile(self.good, old)
            p = promptctl(["--socket", d.socket, "db", "backup", old], env=d.env)
            self.assertEqual(p.returncode, 1, p)
            self.assertIn("--force", p.stderr)
            p = promptctl(["--socket", d.socket, "db", "backup", "--force", old], env=d.env)
            self.assertEqual(p.returncode, 0, p)
            self.assertIn("backed up 1 entries", p.stdout)


# ---- item 9: "cancelled" means nothing changed --------------------------------

class Cancel(StoreTestCase):
    def held(self, d):
        """Another process holds the live database's write lock."""
        blocker = sqlite3.connect(db_path(d.home), isolation_level=None, timeout=10)
        blocker.execute("BEGIN IMMEDIATE")
        return blocker

    def seeded(self, n):
        d = builtin_daemon(SQLITE_RETENTION_DAYS=0)
        seed_legacy(db_path(d.home), [(ts(60), "seeded %d" % i, "p", "zero-shot", 0.5, 1, "m")
                                      for i in range(n)])
        return d

    def test_cancelled_delete_all_deletes_nothing(self):
        d = self.seeded(50)
        with d:
            c = d.client(timeout=30)
            blocker = self.held(d)
            try:
                improve(c, "queued behind the lock")  # the delete waits behind this row
                rid = c.request("history.delete", {"all": True})
                self.assertEqual(c.result("cancel", {"request_id": rid}), {"cancelled": True})
                self.assertEqual(c.response(rid)["error"]["code"], -32800)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            settled(d)
            self.assertEqual(d.call("history.list")["result"]["total"], 51)

    def test_cancelled_restore_replaces_nothing(self):
        with builtin_daemon() as d:
            c = d.client(timeout=30)
            improve(c, "the live history")
            blocker = self.held(d)
            try:
                improve(c, "queued behind the lock")
                rid = c.request("db.restore", {"path": self.good})
                self.assertEqual(c.result("cancel", {"request_id": rid}), {"cancelled": True})
                self.assertEqual(c.response(rid)["error"]["code"], -32800)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            settled(d)
            time.sleep(0.5)  # the job would have run by now
            self.assertEqual(sorted(all_ideas(d)), ["queued behind the lock", "the live history"])
            self.assertEqual([n for n in os.listdir(os.path.dirname(db_path(d.home)))
                              if "restore" in n], [])

    def test_cancel_past_the_point_of_no_return_answers_the_result(self):
        with builtin_daemon() as d:
            c = d.client(timeout=30)
            improve(c, "the live history")
            settled(d)
            blocker = self.held(d)
            try:
                rid = c.request("db.restore", {"path": self.good})
                wait_for(lambda: "replacing the live history" in d.log(), 15,
                         what="the restore's point of no return")
                c.result("cancel", {"request_id": rid})
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            self.assertEqual(c.response(rid).get("result"), {"rows": ROWS})
            self.assertEqual(len(all_ideas(d)), ROWS)

    def consistent_restore(self, d, delay):
        """Restores the good backup into a history of one row, cancels after
        delay; the answer and the history must agree."""
        c = d.client(timeout=30)
        c.result("history.delete", {"all": True})
        improve(c, "the live history")
        settled(d)
        rid = c.request("db.restore", {"path": self.big})
        time.sleep(delay)
        c.request("cancel", {"request_id": rid})
        msg = c.response(rid)
        total = d.call("history.list")["result"]["total"]
        if "error" in msg:
            self.assertEqual(msg["error"]["code"], -32800, msg)
            self.assertEqual(total, 1, (delay, msg))
        else:
            self.assertEqual(total, self.big_rows, (delay, msg))
        c.close()
        return "error" in msg

    def test_cancel_at_any_moment_is_consistent(self):
        self.big_rows = 20000
        with builtin_daemon(SQLITE_RETENTION_DAYS=0) as d:
            self.big = os.path.join(d.home, "big.db")
            seed_legacy(self.big, [(ts(60), "big %d " % i + "w" * 200, "p" * 300, "zero-shot",
                                    0.5, 1, "m") for i in range(self.big_rows)])
            # Which side wins depends on timing (the deterministic cases are
            # the tests above); whichever does, answer and rows agree.
            for delay in (0, 0, 0.002, 0.01, 0.03, 0.1, 0.3, 1.0):
                self.consistent_restore(d, delay)

    def test_delete_all_cancelled_at_any_moment_is_consistent(self):
        for delay in (0, 0.001, 0.01, 0.05):
            d = self.seeded(12000)
            with d:
                c = d.client(timeout=60)
                rid = c.request("history.delete", {"all": True})
                time.sleep(delay)
                c.request("cancel", {"request_id": rid})
                msg = c.response(rid)
                total = d.call("history.list")["result"]["total"]
                if "error" in msg:
                    self.assertEqual((msg["error"]["code"], total), (-32800, 12000), delay)
                else:
                    self.assertEqual((msg["result"]["deleted"], total), (12000, 0), delay)

    def ctl_restore(self, d, path):
        return subprocess.Popen([PROMPTCTL, "--socket", d.socket, "db", "restore", path],
                                env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    @unittest.skipIf(THREAD_SANITIZED, "Ctrl-C must land while the restore is being prepared on "
                     "the thread pool; ThreadSanitizer slows promptctl's cancel more than the "
                     "preparation, so it always lands after (the plain and ASan builds run it)")
    def test_ctrl_c_on_promptctl_restore_before_it_applies(self):
        # Ctrl-C lands while the restore is prepared (copied and checked on
        # the thread pool). Another process's lock keeps a row queued, so
        # the history stays as it was meanwhile. A run slow enough to let
        # the restore past its point of no return first must still be
        # consistent; the scenario is then tried again, and the cancel
        # must win at least once in three.
        for attempt in range(3):
            with builtin_daemon() as d:
                c = d.client(timeout=30)
                improve(c, "the live history")
                blocker = self.held(d)
                try:
                    improve(c, "queued behind the lock")
                    p = self.ctl_restore(d, self.good)
                    wait_for(lambda: d.call("health")["result"]["requests"]["in_flight"] >= 1,
                             10, what="the restore in flight")
                    p.send_signal(signal.SIGINT)
                    time.sleep(0.3)
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                out, err = p.communicate(timeout=30)
                settled(d)
                if p.returncode == 0 and "too late" in err:
                    self.assertEqual(len(all_ideas(d)), ROWS, (out, err))  # applied, and said so
                    continue
                self.assertEqual(p.returncode, 130, (out, err))
                self.assertIn("unchanged", err)
                self.assertEqual(sorted(all_ideas(d)),
                                 ["queued behind the lock", "the live history"])
                return
        self.fail("Ctrl-C never arrived before the restore's point of no return")

    def test_ctrl_c_on_promptctl_restore_after_it_applied(self):
        with builtin_daemon() as d:
            c = d.client(timeout=30)
            improve(c, "the live history")
            settled(d)
            blocker = self.held(d)
            try:
                p = self.ctl_restore(d, self.good)
                wait_for(lambda: "replacing the live history" in d.log(), 15,
                         what="the restore's point of no return")
                p.send_signal(signal.SIGINT)
                time.sleep(0.3)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, (out, err))
            self.assertIn("restored %d entries" % ROWS, out)
            self.assertIn("too late", err)
            self.assertEqual(len(all_ideas(d)), ROWS)


# ---- item 10: a successful restore closes the breaker ------------------------

class Breaker(StoreTestCase):
    def test_restore_resets_an_open_breaker(self):
        probe = builtin_daemon()
        prepare(probe)
        con = sqlite3.connect(db_path(probe.home))
        pages, page_size = (con.execute("PRAGMA " + p).fetchone()[0]
                            for p in ("page_count", "page_size"))
        con.close()
        probe.cleanup()
        big = "lots of context " * 6000
        # Room for the good backup and a few small rows, not for a 96 KB
        # row; the breaker's pause outlasts the test.
        with builtin_daemon(PROMPTD_TEST_MAX_PAGE_COUNT=pages + 65536 // page_size,
                            PROMPTD_TEST_CIRCUIT_PAUSE_MS=600000) as d:
            c = d.client(timeout=30)
            msg = c.call("improve", {"idea": IDEA, "context": big})
            self.assertIn("result", msg, msg)
            wait_for(lambda: d.call("health")["result"]["database"]["status"] == "circuit_open",
                     30, what="an open circuit")
            self.assertIsNone(improve(c, "dropped while open")["id"])
            self.assertEqual(c.result("db.restore", {"path": self.good}), {"rows": ROWS})
            h = d.call("health")["result"]["database"]
            self.assertNotEqual(h["status"], "circuit_open", h)
            r = improve(c, "recorded after the restore")
            self.assertIsInstance(r["id"], int)
            settled(d)
            self.assertEqual(c.result("history.get", {"id": r["id"]})["original_idea"],
                             "recorded after the restore")
            self.assertEqual(d.call("health")["result"]["database"]["status"], "healthy")


if __name__ == "__main__":
    unittest.main()
