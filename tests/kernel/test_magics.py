"""%%llm and %llm in a real kernel, against a real jupyter-server running the tiny model.

What is asserted is what a frontend receives: the execute reply, and the display messages
(``display_data``, then ``update_display_data`` for the same display id) of each cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jupyter_llm.kernel.render import escape_markdown_html
from jupyter_llm.testing import free_port

from .conftest import Kernels, Server, clean_env, server_env
from .support import Cell, KernelDriver

# slow: a real jupyter server subprocess and real kernels (tests/kernel/conftest.py)
pytestmark = pytest.mark.slow

LONG = 1500  # tokens: about two seconds of streaming on two cores, with ignore_eos
STREAM = f"%%llm -o story -n {LONG} -p ignore_eos=true\nTell me a long story."


def job_id(cell: Cell) -> str:
    return cell.answer_id().removeprefix("jupyter_llm-")


def status_line(cell: Cell) -> str:
    status_id = cell.answer_id() + "-status"
    return str(cell.updates(status_id)[-1].content["data"]["text/plain"])


def markdown_of(message: object) -> str:
    text = message.content["data"]["text/markdown"]  # type: ignore[attr-defined]
    text = str(text).removesuffix("\n```")  # a code block closed while it streams
    return text.replace("&lt;", "<").replace("&amp;", "&")  # raw HTML shows as text


def test_a_streaming_cell_returns_at_once_and_the_kernel_stays_free(
    kernel: KernelDriver, server: Server
) -> None:
    cell = kernel.ok(STREAM)
    assert cell.final() is None, "the reply came after the whole answer"
    assert cell.reply is not None

    other = kernel.ok("1 + 1")
    assert other.result() == "2"
    assert other.reply is not None
    assert not other.displays, "stream output landed in the cell that ran last"

    kernel.wait_for(lambda: cell.final() is not None, 60, "the final paint")
    final = cell.final()
    assert final is not None
    answer = cell.updates(cell.answer_id())
    streamed_after = [m for m in answer if m is not final and m.sent > other.reply.sent]
    assert streamed_after, "no token reached the first cell after the second one finished"
    assert all(m.msg["parent_header"]["msg_id"] == cell.msg_id for m in cell.displays)

    record = server.job(job_id(cell))
    assert record["status"] == "completed"
    assert record["usage"]["completion_tokens"] == LONG
    assert final.content["data"]["text/plain"] == record["text"]
    assert final.content["data"]["text/markdown"] == escape_markdown_html(record["text"])
    for paint in answer[1:-1]:  # every repaint showed a prefix of the answer
        assert record["text"].startswith(markdown_of(paint))

    seconds = (final.sent - answer[0].sent).total_seconds()
    assert len(answer) - 2 <= seconds / 0.1 + 1, "more than 10 repaints a second"
    assert re.match(rf"llm · tiny · completed · {LONG} tokens · \d+ tok/s", status_line(cell))
    assert kernel.value("story.status.value") == "completed"
    assert kernel.value("story.text") == record["text"]
    assert kernel.value("'torch' in __import__('sys').modules") is False
    assert kernel.value("'transformers' in __import__('sys').modules") is False


def test_wait_blocks_until_done_and_binds_the_generation(
    kernel: KernelDriver, server: Server
) -> None:
    cell = kernel.ok("%%llm --wait -o answer -n 24 -t 0\nName three primes.")
    final = cell.final()
    assert final is not None and cell.reply is not None
    assert final.sent <= cell.reply.sent
    record = server.job(job_id(cell))
    assert kernel.value("answer.text") == record["text"] == final.content["data"]["text/plain"]
    assert kernel.value("answer.wait()") == record["text"]
    assert kernel.value("[answer.status.value, answer.tokens]") == ["completed", 24]


def test_interpolation_fills_variables_and_history(kernel: KernelDriver) -> None:
    kernel.ok("topic = 'batching'")
    product = kernel.ok("6 * 7")
    assert product.reply is not None
    n = product.reply.content["execution_count"]
    cell = f'{{topic}} {{Out[{n}]}} {{"json": 1}} {{}} {{In[-2]}}'
    kernel.ok(f"%%llm -m fake -n 20 --wait -o filled\n{cell}")
    words = ["batching", "42", '{"json":', "1}", "{}"]
    assert kernel.value("filled.text").split()[:5] == words
    assert kernel.value("filled.text").split()[5] == "6"  # In[-2]: the cell "6 * 7"
    # A name the notebook lacks is an error (tests/kernel/test_bad_magics.py) ...

    kernel.ok(f"%%llm -m fake -n 6 --wait -o raw --no-interpolate\n{cell}")
    assert kernel.value("raw.text") == cell


def test_formats_render_their_final_form(kernel: KernelDriver) -> None:
    as_json = kernel.ok("%%llm -m fake -n 1 --wait -f json\n[1,2,3]")
    final = as_json.final()
    assert final is not None
    assert final.content["data"] == {"application/json": [1, 2, 3], "text/plain": "[1,2,3]"}

    as_html = kernel.ok("%%llm -m fake -n 1 --wait -f html\n<b>bold</b>")
    final = as_html.final()
    assert final is not None
    assert final.content["data"] == {"text/html": "<b>bold</b>", "text/plain": "<b>bold</b>"}

    hostile = "<b>hi</b> <img src=x onerror=alert(1)> <script>alert(2)</script>"
    sanitized = kernel.ok(f"%%llm -m fake -n 6 --wait -f html\n{hostile}").final()
    assert sanitized is not None
    shown = sanitized.content["data"]["text/html"]
    assert "<b>hi</b>" in shown and "onerror" not in shown and "<script" not in shown
    as_markdown = kernel.ok(f"%%llm -m fake -n 6 --wait\n{hostile}").final()
    assert as_markdown is not None
    assert as_markdown.content["data"]["text/markdown"].startswith("&lt;b>hi&lt;/b> &lt;img")

    as_text = kernel.ok("%%llm -m fake -n 2 --wait -f text\nplain words")
    final = as_text.final()
    assert final is not None
    assert final.content["data"] == {"text/plain": "plain words"}

    not_json = kernel.ok("%%llm -m fake -n 1 --wait -f json\n{oops")
    assert "not valid JSON" in status_line(not_json)


def test_code_format_waits_and_puts_the_code_in_a_new_cell(kernel: KernelDriver) -> None:
    cell = kernel.ok("%%llm -m fake -n 1 -f code\nprint(6*7)")
    assert cell.reply is not None and cell.final() is not None  # it waited
    payload = cell.reply.content["payload"]
    assert payload == [{"source": "set_next_input", "text": "print(6*7)", "replace": False}]
    assert "its code is in a new cell below" in status_line(cell)


def test_errors_show_as_one_short_line(kernel: KernelDriver) -> None:
    unknown = kernel.run("%%llm -m nope\nhello")
    error = unknown.error()
    assert error is not None and error["ename"] == "CellError"
    assert error["evalue"] == (
        "unknown model 'nope'; available models: tiny, fake, tight; "
        "choose one with -m NAME (%llm models lists them)"
    )
    assert len(error["traceback"]) == 1

    bad_option = kernel.run("%%llm -f pdf\nhello")
    error = bad_option.error()
    assert error is not None and error["ename"] == "UsageError"

    empty = kernel.run("%%llm\n   ")
    error = empty.error()
    assert error is not None and "the cell is empty" in error["evalue"]

    bad_param = kernel.run("%%llm -m fake -p top_p=7\nhello")
    error = bad_param.error()
    assert error is not None and "top_p" in error["evalue"]


def test_a_failed_generation_is_shown_in_its_cell(kernel: KernelDriver) -> None:
    cell = kernel.ok("%%llm -m fake -o broken\n<<fail>>")
    kernel.wait_for(lambda: cell.final() is not None, 30, "the final paint")
    assert status_line(cell).startswith("llm · fake · generation failed: the fake engine")
    assert kernel.value("broken.status.value") == "failed"

    waited = kernel.run("%%llm -m fake --wait\n<<fail>>")
    error = waited.error()
    assert error is not None and error["evalue"].startswith("generation failed: ")


def test_a_full_queue_is_refused_with_the_wait_to_expect(kernel: KernelDriver) -> None:
    kernel.ok("%%llm -m tight -n 500 -o first\nbusy")  # runs
    kernel.ok("%%llm -m tight -n 500 -o second\nbusy")  # waits in the one queue place
    refused = kernel.run("%%llm -m tight -n 5\nbusy")
    error = refused.error()
    assert error is not None
    assert re.fullmatch(
        r"the queue of model 'tight' is full \(1 jobs waiting\); retry in \d+ s "
        r"\(%llm status shows the load\)",
        error["evalue"],
    )
    cancelled = kernel.ok("%llm cancel all")
    assert cancelled.text() == "cancelled 2 jobs\n"
    assert kernel.value("[first.status.value, second.status.value]") == ["cancelled"] * 2


def test_cancel_stops_a_streaming_cell(kernel: KernelDriver, server: Server) -> None:
    cell = kernel.ok(STREAM.replace("story", "doomed"))
    kernel.ok("doomed.cancel()")
    assert kernel.value("doomed.status.value") == "cancelled"
    kernel.wait_for(lambda: cell.final() is not None, 30, "the final paint")
    final = cell.final()
    assert final is not None
    record = server.job(job_id(cell))
    assert record["status"] == "cancelled"
    assert record["usage"]["completion_tokens"] < LONG
    assert final.content["data"]["text/plain"] == record["text"]
    assert "· cancelled" in status_line(cell)


def test_cancel_by_id_prefix(kernel: KernelDriver, server: Server) -> None:
    cell = kernel.ok(STREAM.replace("story", "victim"))
    prefix = job_id(cell)[:8]
    cancelled = kernel.ok(f"%llm cancel {prefix}")
    assert cancelled.text() == f"job {prefix}: cancelled\n"
    assert server.job(job_id(cell))["status"] == "cancelled"

    missing = kernel.run("%llm cancel 0000ffff")
    error = missing.error()
    assert error is not None and "no job with id '0000ffff'" in error["evalue"]


def test_line_magic_reports(kernel: KernelDriver, server: Server) -> None:
    models = kernel.ok("%llm models").displays[0].content["data"]["text/plain"]
    tiny = r"^tiny\s+ready\s+transformers\s+cpu\s+float32, oneDNN packed\s+1/1"
    assert re.search(tiny, models, re.MULTILINE), models
    assert re.search(r"^fake\s+ready\s+fake", models, re.MULTILINE)

    status = kernel.ok("%llm status").displays[0].content["data"]["text/plain"]
    assert status.startswith(f"jupyter_llm: the jupyter_llm server at {server.url}\n")
    assert "chosen because: JUPYTER_LLM_URL is set" in status

    for _ in range(3):
        kernel.ok("%%llm -m fake -n 2 --wait\nhello there")
    jobs = kernel.ok("%llm jobs 3").displays[0].content["data"]["text/plain"]
    lines = jobs.splitlines()
    assert lines[0].split() == ["id", "model", "status", "tokens", "age", "text"]
    assert len(lines) == 4
    assert re.fullmatch(r"[0-9a-f]{8}\s+fake\s+completed\s+2\s+\d+ s\s+hello there", lines[1])

    usage = kernel.run("%llm frobnicate").error()
    assert usage is not None and usage["ename"] == "UsageError"
    assert "models | status | jobs" in kernel.ok("%llm").text()


def test_iterating_a_generation_sync_and_async(kernel: KernelDriver) -> None:
    kernel.ok(
        "from jupyter_llm.kernel import Client\n"
        "g = Client.default().generate('one two three', model='fake', max_tokens=6)\n"
        "pieces = list(g)"
    )
    assert kernel.value("pieces") == ["one", " two", " three", " one", " two", " three"]
    kernel.ok(
        "h = Client.default().generate('a b', model='fake', max_tokens=4)\n"
        "apieces = [p async for p in h]"
    )
    assert kernel.value("''.join(apieces)") == "a b a b"


def test_an_interrupt_while_waiting_cancels_the_job(
    kernels: Kernels, server: Server, tmp_path: Path
) -> None:
    kernel = kernels.start(server_env(server, tmp_path))
    kernel.ok("%load_ext jupyter_llm")
    code = f"%%llm --wait -n {LONG} -p ignore_eos=true\nTell me a long story."
    msg_id = kernel.execute(code)
    cell = kernel.cells[msg_id]
    kernel.wait_for(lambda: len(cell.displays) > 2, 30, "the first tokens")
    kernel.manager.interrupt_kernel()
    kernel.wait_for(lambda: cell.reply is not None, 30, "the reply")
    error = cell.error()
    assert error is not None and error["ename"] == "CellError"
    assert error["evalue"] == f"interrupted: job {job_id(cell)[:8]} cancelled"
    assert server.job(job_id(cell))["status"] == "cancelled"
    assert "· cancelled" in status_line(cell)
    assert kernel.ok("1 + 1").result() == "2"


def test_an_unreachable_server_is_named_in_the_error(kernels: Kernels, tmp_path: Path) -> None:
    env = clean_env(tmp_path, JUPYTER_LLM_URL=f"http://127.0.0.1:{free_port()}/base/")
    kernel = kernels.start(env)
    kernel.ok("%load_ext jupyter_llm")
    error = kernel.run("%%llm\nhello").error()
    assert error is not None
    assert error["evalue"] == (
        f"cannot reach the jupyter_llm server at {env['JUPYTER_LLM_URL']}: connection refused; "
        "is that server running? (JUPYTER_LLM_URL points at it)"
    )


def test_a_system_message_goes_before_the_prompt(kernel: KernelDriver, server: Server) -> None:
    plain = kernel.ok("%%llm --wait -n 4\nHello")
    system = kernel.ok('%%llm --wait -n 4 -s "You answer in haiku."\nHello')
    tokens = [server.job(job_id(c))["usage"]["prompt_tokens"] for c in (plain, system)]
    assert tokens[1] > tokens[0]  # the tiny model's chat template puts the system turn first


def test_the_magic_documents_itself(kernel: KernelDriver) -> None:
    doc = kernel.value("get_ipython().find_magic('llm', 'cell').__doc__")
    assert doc.startswith("%%llm [-m MODEL] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS]")
    assert "-f code waits as --wait does" in doc


def test_a_schema_from_the_namespace_constrains_the_answer(kernel: KernelDriver) -> None:
    kernel.ok(
        "shape = {'type': 'object', 'properties': {'ok': {'type': 'boolean'}}, "
        "'required': ['ok'], 'additionalProperties': False}"
    )
    cell = kernel.ok("%%llm -m tiny -n 40 --wait -f json --schema shape -o answer\nIs it ok?")
    final = cell.final()
    assert final is not None
    assert set(final.content["data"]["application/json"]) == {"ok"}
    missing = kernel.run("%%llm -m tiny --schema nothing\nhi")
    assert "names nothing" in str(missing.error()), missing.error()
