"""14 -- Child processes in a pipeline, like ``seq 100 | sum`` in a shell.

What it teaches: ``kernel.subprocess.Popen`` starts a child whose pipes are ``FileStream``s
the kernel waits on like sockets. The first child's stdout is handed to the second as its
stdin; the parent closes its own copy and reads the second child's output. ``async with``
waits for each child to exit (and, if the task is cancelled, terminates it instead).

Read next: examples/15_asyncio_sleep_then_123.py, where the asyncio programs begin; and
docs/io.md, which follows one read through the I/O wait table.
"""

import sys

import kernel
from kernel.subprocess import PIPE, Popen

COUNT = "for i in range(1, 101): print(i)"
SUM = "import sys; print(sum(int(line) for line in sys.stdin))"


async def main() -> None:
    numbers = Popen([sys.executable, "-c", COUNT], stdout=PIPE)
    async with numbers:
        assert numbers.stdout is not None
        total = Popen([sys.executable, "-c", SUM], stdin=numbers.stdout, stdout=PIPE)
        async with total:
            await numbers.stdout.close()  # only the second child reads it now
            assert total.stdout is not None
            print(f"1 + 2 + ... + 100 = {(await total.stdout.read()).decode().strip()}")
    print(f"exit codes: {numbers.returncode}, {total.returncode}")


if __name__ == "__main__":
    kernel.run(main)
