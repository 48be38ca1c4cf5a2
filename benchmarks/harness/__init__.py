"""The comparison harness behind ``benchmarks/run.py``: workloads, runners, timing, report.

- `workloads`  what is run: agent code plus the notebook state it runs against
- `runners`    how it is run: plain CPython, pairproxy, smolagents, RestrictedPython
- `measure`    one workload in one process: verify every runner, then time them
- `report`     the Markdown table of ratios and the machine it was measured on
"""
