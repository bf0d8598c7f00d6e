#!/usr/bin/env python3
"""Commit messages as the project writes them: `area: imperative summary` in at most 72
characters, then (when there is a body) a blank line and the body.

    python scripts/check_commit_message.py FILE        # one message (the commit-msg hook)
    python scripts/check_commit_message.py --since REV # every commit in REV..HEAD (CI)

With no argument, CI's form: every commit since BASE, the last landing before these rules.
Earlier history is left as it is.
"""

from __future__ import annotations

import re
import subprocess
import sys

BASE = "aa150c2"  # main when the rules began; commits after it are checked
MAX_SUBJECT = 72
SUBJECT = re.compile(r"[^\s:][^:]{0,39}: \S")  # "area: summary"; the area without a colon
EXEMPT = ("Merge ", "Revert ", "fixup! ", "squash! ", "amend! ")  # subjects git writes


def problems(message: str) -> list[str]:
    """What is wrong with one commit message (git's comment lines left out); [] if nothing."""
    lines = [line for line in message.split("\n") if not line.startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return ["the subject (first line) is empty"]
    subject = lines[0]
    found = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"the subject is {len(subject)} characters; at most {MAX_SUBJECT}")
    if not subject.startswith(EXEMPT) and not SUBJECT.match(subject):
        found.append("the subject should read 'area: imperative summary'")
    if len(lines) > 1 and lines[1].strip():
        found.append("the second line should be blank (between the subject and the body)")
    return found


def check_range(since: str) -> int:
    if subprocess.run(["git", "cat-file", "-e", f"{since}^{{commit}}"]).returncode != 0:
        print(f"commit messages: {since} is not in this clone (shallow?); nothing checked")
        return 0
    log = subprocess.run(
        ["git", "log", "--format=%h%x00%B%x01", f"{since}..HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = 0
    count = 0
    for entry in log.split("\x01"):
        if not entry.strip():
            continue
        commit, _, message = entry.strip("\n").partition("\x00")
        count += 1
        for problem in problems(message):
            failed += 1
            print(f"{commit} {message.splitlines()[0][:60]!r}: {problem}")
    print(f"commit messages: {count} since {since}, {failed} problem(s)")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv:
        return check_range(BASE)
    if argv[0] == "--since" and len(argv) == 2:
        return check_range(argv[1])
    if len(argv) == 1:
        with open(argv[0], encoding="utf-8") as file:
            found = problems(file.read())
        for problem in found:
            print(f"commit-msg: {problem}", file=sys.stderr)
        if found:
            print(f"commit-msg: the message is kept in {argv[0]}", file=sys.stderr)
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
