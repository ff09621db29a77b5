"""Helpers shared by the test suites: polling waits and the real services the tests start."""
