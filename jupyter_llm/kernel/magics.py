"""``%%llm`` and ``%llm``: the notebook's way in (docs/interfaces.md, "Notebook side").

The cell magic submits the cell as a prompt and returns at once; the answer streams into
the cell's output from the background loop (``view.py``). The line magic reports and
cancels. Errors show as one short line (``CellError``), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.display import display

from ..errors import LLMError, UnknownJob
from .client import Client
from .errors import CellError, explain
from .generation import Generation
from .interpolate import MissingName, interpolate
from .render import FORMATS, extract_code
from .reports import jobs_report, models_report, status_report
from .sink import show, sink_for
from .view import GenerationView

__all__ = ["LLMMagic"]

LINE_USAGE = "%llm models | status | jobs [N] | cancel ID|all | chat [MODEL]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _cell_parser() -> _Parser:
    parser = _Parser(prog="%%llm", add_help=False)
    parser.add_argument(
        "-m", "--model", help="the model (default: the first configured one that has not failed)"
    )
    parser.add_argument("-s", "--system", help="a system message before the prompt")
    parser.add_argument("-t", "--temperature", type=float, help="0 is greedy; up to 2")
    parser.add_argument("-n", "--max-tokens", type=int, help="the most tokens to generate")
    parser.add_argument(
        "-f", "--format", choices=FORMATS, default="markdown", help="how to show the answer"
    )
    parser.add_argument("-o", "--output", metavar="NAME", help="bind the Generation to NAME")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sampling parameter (top_p=0.9, seed=1, stop='\\n', ignore_eos=true)",
    )
    parser.add_argument(
        "--schema",
        metavar="NAME|FILE",
        help="a JSON schema the answer must fit: the name of a dict (or of a pydantic model "
        "class) in the notebook, or a .json file",
    )
    parser.add_argument("--wait", action="store_true", help="block until the answer is done")
    parser.add_argument(
        "--no-interpolate", action="store_true", help="send {var}, {In[n]}, {Out[n]} as written"
    )
    return parser


CELL_PARSER = _cell_parser()


class LLMMagic:
    """%%llm [-m MODEL] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS] [-f markdown|text|code|html|json]
          [-o NAME] [-p KEY=VALUE]... [--schema NAME|FILE] [--wait] [--no-interpolate]
    %llm models | status | jobs [N] | cancel ID|all | chat [MODEL]

    As a cell magic, the cell's text is the prompt (sent as the user's chat message).
    ``{var}``, ``{In[n]}`` and ``{Out[n]}`` are filled from the namespace (an unknown
    name is an error; --no-interpolate sends the text untouched). The cell returns at once
    and the answer streams into its output, under a status line (model, state, tokens,
    tok/s), while the kernel runs other cells.

      -m MODEL     the model; default: the first configured model that has not failed
      -s SYSTEM    a system message
      -t TEMP      temperature (0 is greedy)
      -n N         max_tokens
      -f FORMAT    markdown (default), text, html, json (parsed at the end) or code
      -o NAME      bind the Generation handle to NAME at once: NAME.text, NAME.status,
                   NAME.wait(), NAME.cancel(), `for piece in NAME`, `async for ...`
      -p KEY=VAL   another sampling parameter (top_p, top_k, seed, stop, ignore_eos...);
                   VAL is read as JSON when it can be (true, 0.9, ["a"]), else as text
      --schema S   the answer is JSON that fits this schema (constrained decoding): S is
                   the name of a dict or a pydantic model class, or a .json file (not
                   {name}: IPython fills braces in a magic's line before the magic sees it)
      --wait       block until the answer is complete; interrupting the kernel then
                   cancels the job

    -f code waits as --wait does, then puts the code of the answer (its fenced blocks,
    or all of it) into a new cell below: a frontend creates that cell only from the reply
    of a cell that is still running, so a streaming cell cannot do it later.

    As a line magic:
      %llm models         the models and their state
      %llm status         which server (or embedded pool) is in use, and its load
      %llm jobs [N]       the N most recent jobs (default 20)
      %llm cancel ID|all  cancel a job (an id or a unique prefix of 4+ characters), or
                          every unfinished job started from this kernel
      %llm chat [MODEL]   a chat widget (jupyter_llm.ChatWidget); `chat = %llm chat`
                          keeps a handle: chat.send(text), chat.messages, chat.save(path)
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def __call__(self, line: str, cell: str | None = None) -> Any:
        try:
            if cell is None:
                return self._line(line)
            self._cell(line, cell)
            return None
        except LLMError as exc:
            client = Client.existing()
            embedded = client is not None and client.is_embedded
            raise CellError(explain(exc, embedded=embedded)) from exc

    # -- %%llm -----------------------------------------------------------------------------

    def _cell(self, line: str, cell: str) -> None:
        args = CELL_PARSER.parse_args(_split(line))
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"%%llm -o: {args.output!r} is not a Python name")
        try:
            prompt = (
                cell if args.no_interpolate else interpolate(cell, self.shell.user_ns, strict=True)
            )
        except MissingName as exc:
            raise UsageError(
                f"%%llm: {exc.placeholder} names nothing in the notebook; define it, or run "
                "the cell with --no-interpolate to send braces as written"
            ) from None
        prompt = prompt.strip()
        if not prompt:
            raise UsageError("%%llm: the cell is empty; write the prompt below the %%llm line")
        params = _params(args.param)
        if args.max_tokens is not None:
            params["max_tokens"] = args.max_tokens
        if args.temperature is not None:
            params["temperature"] = args.temperature
        schema = None if args.schema is None else self._schema(args.schema)
        client = Client.default()
        generation = client.generate(
            prompt, model=args.model, system=args.system, schema=schema, **params
        )
        if args.output:
            self.shell.user_ns[args.output] = generation
        view = GenerationView(generation, sink_for(self.shell), args.format, client.loop.loop)
        view.show()
        if args.wait or args.format == "code":
            self._wait(generation)
            if args.format == "code":
                self.shell.set_next_input(extract_code(generation.text), replace=False)
                view.annotate("its code is in a new cell below")

    def _schema(self, value: str) -> dict[str, Any]:
        """A name: a dict, or a class with ``model_json_schema`` (pydantic); else a file."""
        if value.isidentifier():
            if value not in self.shell.user_ns:
                raise UsageError(f"%%llm --schema: {value} names nothing in the notebook")
            found = self.shell.user_ns[value]
            schema = found.model_json_schema() if hasattr(found, "model_json_schema") else found
        else:
            try:
                with open(value, encoding="utf-8") as file:
                    schema = json.load(file)
            except (OSError, ValueError) as exc:
                raise UsageError(f"%%llm --schema: cannot read {value}: {exc}") from None
        if not isinstance(schema, dict):
            raise UsageError(f"%%llm --schema: {value} is not a JSON schema (a dict)")
        return schema

    def _wait(self, generation: Generation) -> None:
        try:
            generation.wait()
        except KeyboardInterrupt:  # wait() has cancelled the job
            raise CellError(f"interrupted: job {generation.id[:8]} cancelled") from None

    # -- %llm ------------------------------------------------------------------------------

    def _line(self, line: str) -> Any:
        words = _split(line)
        if not words or words[0] in ("help", "-h", "--help"):
            print(f"usage: {LINE_USAGE}  (%llm? for all of it)")
            return
        command, rest = words[0], words[1:]
        if command == "chat":
            return self._chat(rest)
        if command not in ("models", "status", "jobs", "cancel"):
            raise UsageError(f"%llm: unknown command {command!r}\nusage: {LINE_USAGE}")
        client = Client.default()
        if command == "models":
            show(models_report(client.models()))
        elif command == "status":
            report = status_report(client.where, client.why, client.status(), len(client.live))
            show(report)
        elif command == "jobs":
            show(jobs_report(client.jobs(_count(rest))))
        else:
            self._cancel(client, rest)

    def _chat(self, rest: list[str]) -> Any:
        """A ``ChatWidget``, shown in the cell and returned (``chat = %llm chat`` keeps a handle).

        An assignment has no output, so the widget is shown once the cell has run unless the
        cell's result already showed it: ``%llm chat`` and ``chat = %llm chat`` both show
        one chat, never two.
        """
        if len(rest) > 1:
            raise UsageError(f"%llm chat: give at most one model name\nusage: {LINE_USAGE}")
        from .chat import ChatWidget

        widget = ChatWidget(rest[0] if rest else None)
        events = self.shell.events

        def show_unless_shown(result: Any) -> None:
            events.unregister("post_run_cell", show_unless_shown)
            if result.result is not widget:
                display(widget)  # type: ignore[no-untyped-call]

        events.register("post_run_cell", show_unless_shown)
        return widget

    def _cancel(self, client: Client, rest: list[str]) -> None:
        if len(rest) != 1:
            raise UsageError(f"%llm cancel: give one job id, or all\nusage: {LINE_USAGE}")
        if rest[0] == "all":
            cancelled = client.cancel_all()
            print(f"cancelled {len(cancelled)} job{'' if len(cancelled) == 1 else 's'}")
            return
        job_id = _full_id(client, rest[0])
        record = client.cancel(job_id)
        print(f"job {job_id[:8]}: {record.status.value}")


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%llm: {exc} in {line!r}") from None


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"%%llm -p: expected KEY=VALUE, got {pair!r}")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def _count(rest: list[str]) -> int:
    if not rest:
        return 20
    if len(rest) == 1 and rest[0].isdigit() and int(rest[0]) > 0:
        return int(rest[0])
    raise UsageError(f"%llm jobs: expected a number of jobs, got {' '.join(rest)!r}")


def _full_id(client: Client, given: str) -> str:
    if len(given) >= 32:
        return given
    if len(given) < 4:
        raise UsageError("%llm cancel: give at least 4 characters of the job id")
    matches = [r.id for r in client.jobs(1000) if r.id.startswith(given)]
    if not matches:
        raise UnknownJob(given)
    if len(matches) > 1:
        raise UsageError(f"%llm cancel: {given!r} matches {len(matches)} jobs; give more of it")
    return matches[0]
