"""Builds the optional compiled parts: `pairproxy._speedups`, the per-op fast paths (see
pairproxy/hotpath.py), and `pairproxy._arrowhash`, column digests read from arrow buffers
(see pairproxy/fingerprint.py).

Everything else about the package is declared in pyproject.toml.  The extensions are
optional: without Cython or a C compiler, or with ``PAIRPROXY_NO_EXTENSIONS=1``, the
package installs pure Python and behaves the same, a little slower per op.
"""

import os

from setuptools import Extension, setup


def extensions() -> list[Extension]:
    if os.environ.get("PAIRPROXY_NO_EXTENSIONS", "").strip() not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    built: list[Extension] = cythonize(
        [Extension(f"pairproxy.{name}", [f"pairproxy/{name}.pyx"]) for name in ("_speedups", "_arrowhash")],
        quiet=True,
    )
    for ext in built:
        ext.optional = True  # a failed compile warns and installs pure Python (cythonize drops the flag)
    return built


setup(ext_modules=extensions())
