"""01 -- Hello, kernel: an ``async def`` function runs only when a kernel drives it.

What it teaches: calling ``main()`` builds a coroutine object and runs none of its code.
``kernel.run(main)`` makes a kernel, wraps ``main()`` in the first task (id 1) and resumes it
until it returns; ``run`` hands back the return value. Awaiting another ``async def``
function is a plain call: no task switch, no trip through the scheduler.

Read next: examples/02_sleep_then_123.py
"""

import kernel


async def greet(name: str) -> str:
    return f"hello, {name}"


async def main() -> str:
    task = await kernel.current_task()
    print(f"main runs as task {task.id}, named {task.name!r}")
    print(await greet("kernel"))
    return "main returned"


if __name__ == "__main__":
    print(kernel.run(main))
