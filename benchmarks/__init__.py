"""Benchmarks: the same workloads run on kernel, asyncio, uvloop, curio and trio.

Run ``python -m benchmarks`` from the repository root (README.md in this folder explains the
options and how to read the table). The package is laid out as:

- ``workloads.py``: what is measured (libraries, workloads, sizes) and the shared helpers;
- ``__main__.py``: the harness, which runs each library+workload in a fresh subprocess and
  prints the table;
- ``worker.py``: the subprocess, which runs one workload on one library and prints the result;
- ``lib_kernel.py``, ``lib_asyncio.py`` (also used for uvloop), ``lib_curio.py``,
  ``lib_trio.py``: the workloads written for each library, with the same names in each;
- ``echo_client.py``: the load client of the TCP echo workloads, run in a process of its
  own; ``lib_bare.py``: the echo server with no framework, the ceiling of that row.
"""

__all__: list[str] = []
