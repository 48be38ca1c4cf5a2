"""Builds the optional compiled fast path, `pairproxy._speedups` (see pairproxy/hotpath.py).

Everything else about the package is declared in pyproject.toml.  The extension is
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
        [Extension("pairproxy._speedups", ["pairproxy/_speedups.pyx"])], quiet=True
    )
    for ext in built:
        ext.optional = True  # a failed compile warns and installs pure Python (cythonize drops the flag)
    return built


setup(ext_modules=extensions())
