"""One formatting, enforced: every C file matches .clang-format."""
import glob
import os
import shutil
import subprocess
import unittest

from harness import ROOT


class StyleTest(unittest.TestCase):
    def test_clang_format_clean(self):
        tool = shutil.which("clang-format")
        if not tool:
            self.skipTest("clang-format is not installed (apt-get install clang-format)")
        files = []
        for pattern in ("daemon/*.[ch]", "daemon/*/*.[ch]", "common/*.[ch]", "client/cli/*.[ch]",
                        "include/*.h", "tests/unit/*.[ch]",
                        "tests/fuzz/*.c", "tests/bench/*.c", "scripts/*.c"):
            files += glob.glob(os.path.join(ROOT, pattern))
        self.assertTrue(files)
        r = subprocess.run([tool, "--dry-run", "--Werror"] + sorted(files), cwd=ROOT,
                           capture_output=True, text=True)
        bad = sorted({line.split(":")[0] for line in r.stderr.splitlines() if "error:" in line})
        self.assertEqual(r.returncode, 0, "not formatted (run `make format`): %s" % bad)


if __name__ == "__main__":
    unittest.main()
