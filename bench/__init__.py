"""The benchmarks: ``python -m bench TOOL ...`` (``python -m bench`` lists the tools)."""
