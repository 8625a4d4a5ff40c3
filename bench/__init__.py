"""Benchmark harness of Switchboard (``python -m bench.run`` / ``switchboard bench``)."""
