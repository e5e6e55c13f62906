"""``kernel.subprocess``: the stdlib ``subprocess`` module's ``run``, ``check_output`` and
``Popen``, whose waits are async.

``Popen`` (``kernel/popen.py``) is the child process itself: pipes as ``FileStream``s, its
exit awaited on the I/O wait table, and a child never left behind by a task that is
cancelled while it waits. ``run`` and ``check_output`` are the stdlib's conveniences on top
of it, with the stdlib's arguments, results and errors: ``subprocess.CalledProcessError``
and ``subprocess.TimeoutExpired`` (re-exported here, with ``PIPE``, ``STDOUT``, ``DEVNULL``
and ``CompletedProcess``), so ``except subprocess.CalledProcessError`` works unchanged.

Read next: ``kernel/signals.py``.
"""

from __future__ import annotations

import locale
from subprocess import (
    DEVNULL,
    PIPE,
    STDOUT,
    CalledProcessError,
    CompletedProcess,
    TimeoutExpired,
)
from typing import Any

from .errors import TaskTimeout
from .popen import Command, Popen
from .time import timeout_after

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "CalledProcessError",
    "CompletedProcess",
    "Popen",
    "TimeoutExpired",
    "check_output",
    "run",
]


def _decode(data: bytes | None, encoding: str | None, errors: str | None) -> str | None:
    """Bytes from a child, as ``subprocess`` text mode gives them (universal newlines)."""
    if data is None:
        return None
    text = data.decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def run(
    args: Command,
    *,
    input: bytes | str | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    text: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    universal_newlines: bool | None = None,
    **options: Any,
) -> CompletedProcess[Any]:
    """Run a command, wait for it, and return a ``subprocess.CompletedProcess``.

    The arguments are ``subprocess.run``'s. ``timeout``: the child is stopped and
    ``subprocess.TimeoutExpired`` raised when it runs longer, carrying the output read so far
    (seconds on the kernel's clock, as for ``timeout_after``: a virtual clock in tests moves
    on as soon as every task waits, child or not, so give such tests the real clock).
    ``check``: a non-zero exit raises ``subprocess.CalledProcessError``.
    """
    if input is not None:
        if options.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used")
        options["stdin"] = PIPE
    if capture_output:
        if options.get("stdout") is not None or options.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        options["stdout"] = options["stderr"] = PIPE
    text_mode = bool(text or universal_newlines or encoding or errors)
    if isinstance(input, str):
        if not text_mode:
            raise TypeError("input is a str, but text mode is off (pass text=True, or bytes)")
        input = input.encode(encoding or locale.getpreferredencoding(False), errors or "strict")
    async with Popen(args, **options) as process:
        try:
            async with timeout_after(timeout):
                stdout, stderr = await process.communicate(input)
        except TaskTimeout as expired:
            assert timeout is not None  # (an enclosing block's comes as TimeoutCancellationError)
            raise TimeoutExpired(args, timeout, *(process._output or (None, None))) from expired
    returncode = process.returncode
    assert returncode is not None
    out: Any = stdout
    err: Any = stderr
    if text_mode:
        out, err = _decode(stdout, encoding, errors), _decode(stderr, encoding, errors)
    if check and returncode:
        raise CalledProcessError(returncode, args, out, err)
    return CompletedProcess(args, returncode, out, err)


async def check_output(args: Command, **options: Any) -> Any:
    """Run a command and return its output; a non-zero exit raises ``CalledProcessError``.

    The arguments are ``subprocess.check_output``'s (``input``, ``timeout``, ``text``...).
    ``input=None`` passed explicitly gives the child an empty stdin, as it does there (where
    it is kept for backwards compatibility), unless ``stdin`` is given; left out, the child
    inherits ours.
    """
    if "stdout" in options:
        raise ValueError("stdout argument not allowed, it will be overridden")
    if "input" in options and options["input"] is None and options.get("stdin") is None:
        options["input"] = b""  # (run() takes bytes in text mode too)
    return (await run(args, stdout=PIPE, check=True, **options)).stdout
