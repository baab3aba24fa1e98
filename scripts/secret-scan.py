#!/usr/bin/env python3
"""The whole-run secret scan: looks through everything a test run produced
(process logs and metrics kept in $OTPILOT_RUN_ARTIFACTS, the
kube-apiserver's audit log of Events, otpilot resources with their status,
and Leases) for every secret value the run created, as the simulator
recorded them in the ledger ($OTPILOT_SECRET_LEDGER, `kind<TAB>value` lines).

    scripts/secret-scan.py --ledger LEDGER PATH...

PATH: files or directories (read recursively). Fixed-string matching (GNU
grep -F, one pass for all values); a TOTP seed is also looked for lower-case
and in base64 (its raw bytes, and its base32 text). Values shorter than
--min-length are left out (counted): short values match by chance.

Prints only counts and where (file:line and the kind of secret), never a
value. Exit 0: nothing found; 1: secrets found; 2: nothing to scan with
(no ledger, an empty ledger, no files, or a PATH that does not exist),
which proves nothing.
"""

import argparse
import base64
import collections
import os
import subprocess
import sys
import tempfile


def read_ledger(path):
    """{value: kind} from the ledger; the first kind seen wins."""
    values = {}
    with open(path, encoding="utf-8", errors="replace") as ledger:
        for line in ledger:
            kind, tab, value = line.rstrip("\n").partition("\t")
            if tab and value:
                values.setdefault(value, kind)
    return values


def seed_forms(seed):
    """The ways a base32 TOTP seed may show up besides itself."""
    forms = [seed.lower()]
    text = seed.upper().rstrip("=")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raw = None
    if raw:
        forms.append(base64.b64encode(raw).decode())
        forms.append(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    forms.append(base64.b64encode(seed.encode()).decode())
    return forms


def patterns(values, min_length):
    """{pattern: kind} to look for, and how many values were too short."""
    wanted = {}
    short = 0
    for value, kind in values.items():
        forms = [value] + (seed_forms(value) if kind == "totp-seed" else [])
        if len(value) < min_length:
            short += 1
            continue
        for form in forms:
            if len(form) >= min_length:
                wanted.setdefault(form, kind)
    return wanted, short


def files_under(paths):
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                for name in sorted(names):
                    yield os.path.join(root, name)
        elif os.path.isfile(path):
            yield path
        else:
            # A log that should be there and is not (an unmatched glob for
            # the audit log) would make the scan pass on less than it says.
            print(f"secret-scan: {path} does not exist", file=sys.stderr)
            sys.exit(2)


def scan(wanted, files):
    """[(file, line, kind)] for every match; grep reads all files in one pass."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        pattern_file = os.path.join(tmp, "patterns")
        with open(os.open(pattern_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
            out.write("\n".join(wanted) + "\n")
        # -a: logs may hold stray binary bytes; -o: the matched value, to
        # name its kind (kept in memory, never printed).
        command = ["grep", "-F", "-a", "-o", "-n", "-H", "-f", pattern_file, "--"]
        for start in range(0, len(files), 500):
            result = subprocess.run(
                command + files[start : start + 500],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
            if result.returncode > 1:
                print(f"secret-scan: grep failed: {result.stderr.decode(errors='replace')}", file=sys.stderr)
                sys.exit(2)
            for line in result.stdout.decode(errors="replace").splitlines():
                # file:line:match; the file name may hold ':', the match may too.
                for value, kind in wanted.items():
                    if line.endswith(":" + value):
                        head = line[: -len(value) - 1]
                        name, _, number = head.rpartition(":")
                        found.append((name, number, kind))
                        break
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", default=os.environ.get("OTPILOT_SECRET_LEDGER"))
    parser.add_argument("--min-length", type=int, default=8)
    parser.add_argument("--show", type=int, default=50, help="locations printed at most")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()

    if not args.ledger or not os.path.isfile(args.ledger):
        print("secret-scan: no ledger: nothing to look for", file=sys.stderr)
        return 2
    values = read_ledger(args.ledger)
    wanted, short = patterns(values, args.min_length)
    files = list(files_under(args.paths))
    if not wanted or not files:
        print(
            f"secret-scan: nothing to scan ({len(wanted)} values, {len(files)} files)",
            file=sys.stderr,
        )
        return 2
    size = sum(os.path.getsize(f) for f in files)
    kinds = collections.Counter(values.values())
    print(
        f"secret-scan: {len(values)} secret values ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; "
        f"{short} shorter than {args.min_length} left out), {len(wanted)} patterns, "
        f"{len(files)} files, {size / 1e6:.1f} MB"
    )
    found = scan(wanted, files)
    if not found:
        print("secret-scan: no secret found")
        return 0
    by_kind = collections.Counter(kind for _, _, kind in found)
    print(
        f"secret-scan: FOUND {len(found)} secret values in {len({f for f, _, _ in found})} files: "
        + ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
    )
    for name, number, kind in found[: args.show]:
        print(f"  {name}:{number}: {kind}")
    if len(found) > args.show:
        print(f"  ... and {len(found) - args.show} more")
    return 1


if __name__ == "__main__":
    sys.exit(main())
