"""The magics' bad-input matrix in a real kernel: each bad cell fails with one short line that
names the fault (no traceback), and the kernel goes on serving.
"""

from __future__ import annotations

import pytest

from .support import KernelDriver

# slow: a real jupyter server subprocess and real kernels (tests/kernel/conftest.py)
pytestmark = pytest.mark.slow

# (cell, the error's name, what its message says)
CASES = [
    ("%%llm --frobnicate\nhi", "UsageError", "--frobnicate"),
    ("%%llm -f pdf\nhi", "UsageError", "pdf"),
    ("%%llm -t hot\nhi", "UsageError", "hot"),
    ("%%llm -n many\nhi", "UsageError", "many"),
    ("%%llm -m fake -n 0\nhi", "CellError", "max_tokens"),
    ("%%llm -m fake -t 9\nhi", "CellError", "temperature"),
    ("%%llm -m fake -p top_p=7\nhi", "CellError", "top_p"),
    ("%%llm -m fake -p seed=18446744073709551616\nhi", "CellError", "seed"),
    ("%%llm -m fake -p nonsense=1\nhi", "CellError", "nonsense"),
    ("%%llm -m fake -p novalue\nhi", "UsageError", "novalue"),
    ("%%llm -m nope\nhi", "CellError", "unknown model 'nope'"),
    ("%%llm -m fake\nWhat is {no_such_name}?", "UsageError", "{no_such_name} names nothing"),
    ("%%llm -m fake\nSee {In[999]}", "UsageError", "{In[999]} names nothing"),
    ("%%llm\n   ", "UsageError", "the cell is empty"),
    ("%llm frobnicate", "UsageError", "frobnicate"),
    ("%llm cancel zz", "UsageError", "at least 4 characters"),
    ("%llm jobs many", "UsageError", "many"),
]


def test_every_bad_cell_fails_in_one_line_and_the_kernel_serves_on(kernel: KernelDriver) -> None:
    failures = []
    for cell, name, says in CASES:
        error = kernel.run(cell).error()
        try:
            assert error is not None, "no error"
            assert error["ename"] == name, error
            # IPython's usage errors add the magic's usage below the line that says what
            # was wrong; ours are that one line alone, with no traceback.
            first, *rest = error["evalue"].strip().split("\n")
            assert says in first, error["evalue"]
            assert name == "UsageError" or not rest, error["evalue"]
            assert name == "UsageError" or len(error["traceback"]) == 1, error["traceback"]
        except AssertionError as exc:
            failures.append(f"{cell!r}: {exc}")
    assert not failures, "\n".join(failures)
    assert kernel.value("1 + 1") == 2
    done = kernel.ok("%%llm -m fake -n 2 --wait\nstill here")
    assert done.final() is not None


@pytest.mark.parametrize("count", [len(CASES)])
def test_the_matrix_is_wide(count: int) -> None:
    assert count >= 15
