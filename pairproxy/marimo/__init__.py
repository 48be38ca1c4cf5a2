"""marimo integration: pairproxy live in a marimo kernel.

Kernel side (loaded by marimo through entry points):

- :mod:`pairproxy.marimo.executor` - the ``marimo.cell.executor`` entry point: human
  cells run as marimo runs them; scratchpad cells go to a hook, by default
  :func:`pairproxy.marimo.live.scratch_hook`.
- :mod:`pairproxy.marimo.live` - one pairproxy Session per kernel; agent scratchpad code
  runs through it; the owner's scratchpad panel does not.
- :mod:`pairproxy.marimo.config` - which policy and log, per notebook (flags > env >
  ``pairproxy.toml`` > ``[tool.pairproxy]`` > defaults).
- :mod:`pairproxy.marimo.gate` - code-mode mutators become judged, logged notebook ops.
- :mod:`pairproxy.marimo.boundary` - what of marimo and pairproxy agent code may never
  touch, whatever the policy.
- :mod:`pairproxy.marimo.display` - proxies become real values for marimo's formatters.
- :mod:`pairproxy.marimo.capability` - the ``marimo.agent.capability`` entry point: what
  an agent reads in ``help(marimo._code_mode)``.
- :mod:`pairproxy.marimo.owner` - the owner's controls (approvals) for notebook cells.
- :mod:`pairproxy.marimo.mirror` - the owner's panel (``pairproxy.mirror()``): the op
  stream, touched values, refusals, approvals and the policy editor, pushed live.

Outside the kernel: :mod:`pairproxy.marimo.server` (a real server driven over HTTP, for
tests, the demo and benchmarks) and :mod:`pairproxy.marimo.demo` (``pairproxy demo``).

Submodules are not imported here so that importing ``pairproxy.marimo`` does not import
marimo.
"""
