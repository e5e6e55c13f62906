"""``python -m kernel``: the teaching views on the command line.

::

    python -m kernel run script.py [--asyncio] [--deterministic] [--trace]
    python -m kernel explain script.py [--asyncio] [--task NAME] [--limit N]
                                       [--deterministic] [--json]
    python -m kernel timeline script.py [-o timeline.html]
    python -m kernel compare prog.py

Each subcommand lives in its own module, imported only when that subcommand runs. A module
provides two functions:

``add_arguments(parser)``   add its options to an ``argparse.ArgumentParser``;
``command(args) -> int``    do the work; the return value is the exit status.

A mistake in how a subcommand was called -- a bad option, a script that is not there or has no
``main()`` -- is told in one line on stderr, ``python -m kernel explain: error: ...``, with
exit status 2: argparse finds most of them (each option's ``type`` checks its value), and a
command raises ``UsageError`` (``kernel/trace/script.py``) for the others. An exception the
traced program raises is not a usage error: it keeps its traceback.

Adding a view is adding its module and one line to ``SUBCOMMANDS``.

Read next: ``kernel/trace/__init__.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

__all__ = ["SUBCOMMANDS", "main"]

# Subcommand -> (the module that implements it, what it does, for --help).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("kernel.trace.script", "run a script's main() under the kernel"),
    "explain": (
        "kernel.trace.explain",
        "a numbered, narrated walk-through of every scheduling decision",
    ),
    # The views below are registered here; their modules are written separately (issue 6).
    "timeline": ("kernel.trace.timeline", "a per-task timeline, in the terminal or as HTML"),
    "compare": (
        "kernel.trace.compare",
        "the same asyncio program on asyncio and on kernel.aio: where the schedules diverge",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), run the subcommand, return its status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        _overview().print_help()
        return 0
    if not argv or argv[0] not in SUBCOMMANDS:
        _overview().print_help(sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    module_name, summary = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        print(
            f"python -m kernel {name}: not available yet ({module_name} is missing)",
            file=sys.stderr,
        )
        return 2
    parser = _Parser(prog=f"python -m kernel {name}", description=summary)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    from .trace.script import UsageError  # already imported: every view runs a script

    try:
        return int(module.command(args))
    except UsageError as error:
        parser.error(str(error))


class _Parser(argparse.ArgumentParser):
    """argparse's parser, telling a usage mistake in one line: the message names the option
    and what it takes, so the usage summary it would print first is left to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _overview() -> argparse.ArgumentParser:
    """The top-level help: the subcommands, without importing any of them."""
    lines = [f"  {name:<10}{summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    return argparse.ArgumentParser(
        prog="python -m kernel",
        usage="python -m kernel {" + ",".join(SUBCOMMANDS) + "} script.py [options]",
        description="Teaching views of the kernel's scheduler.\n\nsubcommands:\n"
        + "\n".join(lines)
        + "\n\n'python -m kernel SUBCOMMAND --help' describes the options of each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


if __name__ == "__main__":
    sys.exit(main())
