"""``jupyter llm``: manage the models of jupyter_llm from a terminal.

Jupyter runs ``jupyter-llm`` (a console script) for ``jupyter llm``. The commands:

* ``pull NAME|HF_ID``   fetch (and convert) a model ahead of time, with a progress bar;
* ``models``            the configured models, their files, sizes and, with a server, state;
* ``check [FILE]``      validate a models.yaml and print each fault;
* ``bench [MODEL]``     run the engine benchmark on a configured model.

``check`` and ``models`` never import torch: they read files and ask a server over HTTP.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import LLMError

__all__ = ["main"]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="jupyter llm", description="Manage the models of jupyter_llm."
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    config_help = (
        "the models.yaml (default: $JUPYTER_LLM_CONFIG, else ./models.yaml, "
        "else the packaged default)"
    )

    pull = commands.add_parser(
        "pull", help="fetch (and convert) a model ahead of time, with a progress bar"
    )
    pull.add_argument("model", metavar="NAME|HF_ID", help="a configured model, or a hub id")
    pull.add_argument("--config", "-c", help=config_help)
    pull.add_argument("--revision", help="for a hub id: a branch, tag or commit (default main)")

    models = commands.add_parser(
        "models", help="list the configured models: files, sizes, state on a running server"
    )
    models.add_argument("--config", "-c", help=config_help)
    models.add_argument(
        "--url",
        help="a jupyter_llm server's base URL (default: $JUPYTER_LLM_URL, else the running "
        "Jupyter servers)",
    )
    models.add_argument("--token", help="its token (default: $JUPYTER_LLM_TOKEN)")

    check = commands.add_parser("check", help="validate a models.yaml and print each fault")
    check.add_argument("file", nargs="?", metavar="FILE", help=config_help)

    bench = commands.add_parser(
        "bench", help="run the engine benchmark (benchmarks/engine.py) on a configured model"
    )
    bench.add_argument("model", nargs="?", metavar="MODEL", help="default: the first model")
    bench.add_argument("--config", "-c", help=config_help)
    bench.add_argument(
        "--script", help="benchmarks/engine.py of a jupyter_llm source checkout (default: found)"
    )
    bench.epilog = "Arguments after -- go to the benchmark: jupyter llm bench MODEL -- --quick"
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:  # the benchmark's own arguments
        argv, rest = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser().parse_args(argv)
    if rest and args.command != "bench":
        parser().error(f"only bench takes arguments after --, got {' '.join(rest)}")
    try:
        if args.command == "pull":
            from .pull import pull

            return pull(args.model, args.config, args.revision)
        if args.command == "models":
            from .inventory import list_models

            return list_models(args.config, args.url, args.token)
        if args.command == "check":
            from .check import check

            return check(args.file)
        from .bench import bench

        return bench(args.model, args.config, args.script, rest)
    except LLMError as e:
        print(f"jupyter llm {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\njupyter llm {args.command}: interrupted", file=sys.stderr)
        return 130
