#!/usr/bin/env python3
"""Runs one integration test module and prints PASS/FAIL/SKIP per test,
with the failure's traceback indented under its FAIL line."""
import importlib.util
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class LineResult(unittest.TestResult):
    def _name(self, test):
        case = getattr(test, "test_case", None)  # a failed subTest
        if case is not None:
            return "%s.%s%s" % (type(case).__name__, case._testMethodName,
                                test._subDescription().replace(" ", ""))
        if not hasattr(test, "_testMethodName"):  # setUpClass/tearDownClass
            return str(test).replace(" ", "_")
        return "%s.%s" % (type(test).__name__, test._testMethodName)

    def addSuccess(self, test):
        print("PASS %s" % self._name(test), flush=True)

    def _fail(self, test, err):
        print("FAIL %s" % self._name(test))
        for line in self._exc_info_to_string(err, test).splitlines():
            print("    " + line)
        sys.stdout.flush()

    addFailure = _fail
    addError = _fail

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._fail(subtest, err)

    def addSkip(self, test, reason):
        print("SKIP %s: %s" % (self._name(test), reason), flush=True)

    def addExpectedFailure(self, test, err):
        self._fail(test, err)


def main():
    path = sys.argv[1]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = LineResult()
    suite.run(result)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
