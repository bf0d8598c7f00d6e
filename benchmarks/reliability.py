"""The reliability table (issue 10, item 8): cases tried, load held, faults survived, records
lost, from the reliability tests run against real servers at a larger scale than in CI.

    python benchmarks/reliability.py [--scale N] [--fuzz-secs S] [--quick]

It runs the tests that check each promise (tests/server/test_bad_input.py, test_body.py,
test_long_prompt.py, test_fuzz.py, test_overload.py, test_faults.py;
tests/kernel/test_bad_magics.py; the models.yaml matrix in tests/test_config.py) with pytest,
collects what each measured, and prints one table.
A test that fails shows as a failed row: the table never hides a broken promise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SUITES = {
    "bad input": [
        "tests/server/test_bad_input.py",
        "tests/server/test_body.py",
        "tests/server/test_long_prompt.py",
        "tests/kernel/test_bad_magics.py",
        "tests/test_config.py::test_bad_configuration",
    ],
    "fuzzing": ["tests/server/test_fuzz.py"],
    "overload": ["tests/server/test_overload.py"],
    "faults": ["tests/server/test_faults.py", "tests/engine/test_extremes.py"],
}


def run(paths: list[str], out: Path, scale: int, fuzz_secs: int) -> tuple[int, int]:
    """Run ``paths`` with pytest; (passed, failed)."""
    env = {
        **os.environ,
        "JUPYTER_LLM_RELIABILITY_OUT": str(out),
        "JUPYTER_LLM_RELIABILITY_SCALE": str(scale),
        "JUPYTER_LLM_FUZZ_SECS": str(fuzz_secs),
    }
    report = out.with_suffix(".junit.xml")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "900"]
    subprocess.run([*argv, f"--junitxml={report}", *paths], cwd=ROOT, env=env, check=False)
    text = report.read_text() if report.exists() else ""
    tests = _attribute(text, "tests")
    failed = _attribute(text, "failures") + _attribute(text, "errors")
    return tests - failed - _attribute(text, "skipped"), failed


def _attribute(xml: str, name: str) -> int:
    marker = f' {name}="'
    start = xml.find(marker)
    if start < 0:
        return 0
    start += len(marker)
    return int(xml[start : xml.index('"', start)])


def table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _bodies(measured: list[dict[str, Any]]) -> str:
    """Each kind of body sent, the routes it went to, and what came back (and how fast)."""
    cases: dict[str, list[dict[str, Any]]] = {}
    for m in measured:
        cases.setdefault(m["case"], []).append(m)
    said = []
    for case, answers in cases.items():
        statuses = "/".join(sorted({str(a["status"]) for a in answers}))
        slowest = max((a.get("seconds", 0) for a in answers), default=0)
        timing = f" in <= {slowest:.2f} s" if slowest else ""
        routes = len({a["route"] for a in answers})
        where = f"{routes} routes" if routes > 1 else "1 route"
        said.append(f"{case} ({where}): {statuses}{timing}")
    return "; ".join(said) or "none measured"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=3, help="overload rounds: 3 x this")
    parser.add_argument("--fuzz-secs", type=int, default=180, help="schemathesis time budget")
    parser.add_argument("--quick", action="store_true", help="CI sizes: scale 1, 60 s fuzzing")
    args = parser.parse_args()
    scale, fuzz_secs = (1, 60) if args.quick else (args.scale, args.fuzz_secs)
    measured: list[dict[str, Any]] = []
    outcome: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for suite, paths in SUITES.items():
            out = Path(folder) / f"{suite.replace(' ', '_')}.jsonl"
            outcome[suite] = run(paths, out, scale, fuzz_secs)
            if out.exists():
                measured += [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {m["name"]: m for m in measured}
    sys.path.insert(0, str(ROOT))
    from tests.kernel.test_bad_magics import CASES as MAGIC_CASES
    from tests.server.test_bad_input import CASES as HTTP_CASES
    from tests.test_config import BAD as CONFIG_CASES

    fuzz = by_name.get("schema fuzzing", {})
    bodies = _bodies([m for m in measured if m["name"] == "body"])
    load = by_name.get("overload", {})
    faults = [m for m in measured if "lost_records" in m]
    lost = sum(int(m["lost_records"]) for m in faults)
    rows = [
        ("what", "result", "tests passed / failed"),
        (
            "cases tried",
            f"{len(HTTP_CASES)} HTTP + {len(MAGIC_CASES)} magics + {len(CONFIG_CASES)} "
            f"models.yaml bad inputs; {fuzz.get('cases', 'no')} fuzzed requests "
            "(checked: no 5xx, schema, 4xx for invalid input)",
            "{} / {}".format(
                *[sum(x) for x in zip(outcome["bad input"], outcome["fuzzing"], strict=True)]
            ),
        ),
        (
            "load held",
            f"{load.get('rounds', '?')} rounds of {load.get('requests', '?')} simultaneous "
            f"requests (10 x queue depth): {load.get('completed', '?')} completed, "
            f"{load.get('refused', '?')} 429, longest {load.get('longest_s', 0):.1f} s, "
            f"RSS {load.get('rss_first_mb', 0):.0f} -> {load.get('rss_last_mb', 0):.0f} MB",
            "{} / {}".format(*outcome["overload"]),
        ),
        (
            "faults survived",
            f"{len(faults)}: " + ", ".join(m["name"] for m in faults),
            "{} / {}".format(*outcome["faults"]),
        ),
        ("records lost", str(lost), ""),
        ("bodies refused", bodies, "(in bad input)"),
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
