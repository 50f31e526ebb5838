"""A delete that fails on a read-only database must not leave the writer a
read-only connection: once the file is writable again, the circuit
breaker's trial write has to succeed.

SQLite opens a file it cannot write read-only, silently. A failed batch
closes the writer's connection ("reopen next time: the cause may be gone"),
but a failed delete (one id, a range, or the start-up retention, which runs
whenever the writer gets to it) kept the connection it had just reopened:
the trial write after the repair then failed on it, and the circuit opened
again. Found under `make test-tsan`, where the retention ran late enough to
reopen the file after the breaker had closed it."""
import time
import unittest

from harness import Daemon, wait_for
from test_history import builtin_daemon, can_make_immutable, database, db_path, \
    make_db_writable, make_immutable, settled

PAUSE_S = 1.5


class DeleteOnReadOnlyFile(unittest.TestCase):
    def check(self, delete_params):
        # No start-up retention: this test decides when the delete runs.
        d = builtin_daemon(PROMPTD_TEST_CIRCUIT_PAUSE_MS=int(PAUSE_S * 1000),
                           SQLITE_AUTO_CLEANUP="false")
        if not can_make_immutable(d.home):
            d.cleanup()
            self.skipTest("cannot make a file read-only for this user")
        path = db_path(d.home)
        d2 = Daemon(env=dict(d.env), home=d.home)
        try:
            d.start()
            c = d.client()
            kept = c.result("improve", {"idea": "a row to delete later"})["id"]
            self.assertEqual(settled(d)["committed_writes"], 1)
            c.close()
            self.assertEqual(d.stop(), 0)
            # Immutable before the start: SQLite opens the file read-only
            # (a connection opened before would write on into the WAL).
            make_immutable(path, True)
            d2.start()
            c = d2.client()
            self.assertIsInstance(c.result("improve", {"idea": "fails"})["id"], int)
            wait_for(lambda: database(d2)["status"] == "circuit_open", 20, what="an open circuit")
            params = dict(delete_params, id=kept) if "id" in delete_params else delete_params
            e = c.call("history.delete", params)
            self.assertIn("error", e, e)
            self.assertIn("read-only", e["error"]["message"])
            make_db_writable(path)  # the .db and the -wal SQLite made read-only with it
            time.sleep(PAUSE_S + 0.2)
            r = c.result("improve", {"idea": "after the repair"})
            self.assertIsInstance(r["id"], int)
            h = settled(d2)
            self.assertEqual(h["status"], "healthy", h)
            self.assertEqual(c.result("history.get", {"id": r["id"]})["original_idea"],
                             "after the repair")
            c.close()
            self.assertEqual(d2.stop(), 0)
        finally:
            make_db_writable(path)
            d2.cleanup()
            d.cleanup()

    def test_failed_delete_of_one_id(self):
        self.check({"id": None})

    def test_failed_range_delete(self):
        self.check({"all": True})


if __name__ == "__main__":
    unittest.main()
