"""Shared test helpers. The kernel's pytest plugin (kernel.pytest_plugin) runs async tests."""

pytest_plugins = ["pytester"]
