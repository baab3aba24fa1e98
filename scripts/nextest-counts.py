"""Reads nextest's summary line on stdin; prints "PASSED FAILED" or exits 1.

  Summary [  41.2s] 139 tests run: 137 passed, 2 failed, 0 skipped
  Summary [  41.2s] 139 tests run: 139 passed (1 slow), 0 skipped
"""
import re
import sys

line = sys.stdin.read()
run = re.search(r"(\d+) tests? run: ", line)
if not run:
    sys.exit(1)
passed = re.search(r"(\d+) passed", line)
failed = re.search(r"(\d+) failed", line)
timed_out = re.search(r"(\d+) timed out", line)
if not passed and not failed:
    sys.exit(1)
p = int(passed.group(1)) if passed else 0
f = (int(failed.group(1)) if failed else 0) + (int(timed_out.group(1)) if timed_out else 0)
print(p, f)
