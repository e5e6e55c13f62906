"""Where the spawn rate goes at 10^6 tasks: CPython's cyclic garbage collector.

``spawn_scale`` shows every library losing more than half its spawn rate between 10^3 and
10^6 tasks alive. This script shows why, for the kernel and for asyncio: it runs the same
workload with the collector on (timing each collection through ``gc.callbacks``) and with it
off. With it on, a handful of full (generation 2) collections -- each walking every live
task and coroutine, millions of objects -- take about half the time; with it off, the rate
at 10^6 stays close to the rate at 10^3.

Run: ``python -m benchmarks.gc_profile`` (about a minute).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import kernel

from . import lib_asyncio, lib_kernel

__all__ = ["main"]

LARGE = 1_000_000
SMALL, BATCHES = 1_000, 100


class CollectionTimer:
    """Counts and times the collector's runs, per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.count[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started


def rate(run: Callable[[int, int], None], alive: int, batches: int) -> float:
    start = time.perf_counter()
    run(alive, batches)
    return alive * batches / (time.perf_counter() - start)


def run_kernel(alive: int, batches: int) -> None:
    kernel.run(lib_kernel.spawn_scale, alive, batches)


def run_asyncio(alive: int, batches: int) -> None:
    asyncio.run(lib_asyncio.spawn_scale(alive, batches))


def main() -> None:
    for name, run in (("kernel", run_kernel), ("asyncio", run_asyncio)):
        for collector in ("on", "off"):
            gc.collect()
            if collector == "off":
                gc.disable()
            timer = CollectionTimer()
            gc.callbacks.append(timer)
            try:
                small = rate(run, SMALL, BATCHES)
                large_start = time.perf_counter()
                large = rate(run, LARGE, 1)
                large_seconds = time.perf_counter() - large_start
            finally:
                gc.callbacks.remove(timer)
                gc.enable()
            full = f"{timer.count[2]} full collections, {timer.seconds[2]:.1f} s"
            print(
                f"{name:8} gc {collector:3}  10^3: {small / 1e3:5.0f}k/s  10^6: "
                f"{large / 1e3:5.0f}k/s  ratio {large / small:.2f}  "
                f"(10^6 run {large_seconds:.1f} s; {full} over both runs)"
            )


if __name__ == "__main__":
    main()
