"""marimo integration: a test/tooling server driver and the cell executor.

- :mod:`pairproxy.marimo.server` starts a real ``marimo edit`` server and
  runs scratchpad code over HTTP.
- :mod:`pairproxy.marimo.executor` is the ``marimo.cell.executor`` entry
  point that routes scratchpad cells through a pluggable hook.

Submodules are not imported here so that importing ``pairproxy.marimo`` does
not import marimo.
"""
