"""Conformance: CPython's own ``test.test_asyncio`` suite run against a loop factory.

See ``README.md`` in this folder and ``python -m tests.conformance.runner --help``.
"""
