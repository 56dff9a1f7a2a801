"""Benchmarks: scripts that time parts of the project and report rows a harness can collect."""
