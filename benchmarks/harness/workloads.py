"""The workloads: agent code, the notebook state it runs against, and what it must produce.

Every workload is written so that each runner can run it unchanged: no ``print`` (results
are bound to names and compared), no imports (the modules are in the namespace, as in a
notebook), no mutation of notebook objects (the read_only policy and RestrictedPython's
write guard refuse it), no underscore names (RestrictedPython refuses them).  Where a
runner still cannot run one, `expect_na` says why; the harness reports the real error.

Data comes from fixed seeds, so every run and every runner sees the same frames.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

LOOP_ROWS = 10_000
ATTR_ITERATIONS = 10_000
PIPELINE_SIZES = (1_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Workload:
    """One row of the table.

    Args:
        name: identifier (``--only`` takes these).
        label: the row's text in the table.
        code: the agent's code, run by every runner.
        setup: builds the notebook namespace (called once per process, unproxied).
        outputs: names the code binds; each runner's values must equal plain CPython's.
        expect_na: runner name -> why that runner cannot run this workload (documented
            limitations; the table shows the runner's actual error).
        kind: ``"exec"`` (in process) or ``"marimo"`` (real servers, see `measure`).
    """

    name: str
    label: str
    code: str
    setup: Callable[[], dict[str, Any]]
    outputs: tuple[str, ...]
    expect_na: Mapping[str, str] = field(default_factory=dict)
    kind: str = "exec"
    rows: int = 0


# --- data ---------------------------------------------------------------------------------


def make_sales(n: int, lib: str) -> Any:
    """The corpus's sales frame (``01_groupby_sales``) at `n` rows, pandas or polars."""
    rng = np.random.default_rng(7)
    data = {
        "region": rng.choice(["north", "south", "east", "west"], n),
        "product": rng.choice(["apple", "pear", "plum"], n),
        "units": rng.integers(1, 50, n),
        "price": rng.uniform(0.5, 3.0, n).round(2),
    }
    return pd.DataFrame(data) if lib == "pandas" else pl.DataFrame(data)


def make_products(lib: str) -> Any:
    data = {"product": ["apple", "pear", "plum"], "margin": [0.2, 0.35, 0.1]}
    return pd.DataFrame(data) if lib == "pandas" else pl.DataFrame(data)


class Inner:
    def __init__(self) -> None:
        self.weight = 0.25


class Config:
    """A small plain object living in the notebook (the attribute-heavy workload reads it)."""

    def __init__(self) -> None:
        self.scale = 1.5
        self.offset = 2
        self.inner = Inner()


# --- agent code -----------------------------------------------------------------------------

# Shapes from /work/shared/corpus/pandas (01 groupby, 02 filter/query, 03 merge/pivot).
PANDAS_PIPELINE = """\
enriched = sales.assign(revenue=sales["units"] * sales["price"])
by_region = enriched.groupby("region")["revenue"].sum().sort_values(ascending=False)
share = (by_region / by_region.sum()).round(4)
big = enriched[(enriched["units"] > 25) & (enriched["region"] != "west")]
top = big.groupby(["region", "product"]).agg(
    total=("revenue", "sum"), mean=("revenue", "mean"), n=("units", "size")
)
cheap = enriched.query("units > 40 and price < 1.0")
joined = enriched.merge(products, on="product", how="left")
margin = (joined["revenue"] * joined["margin"]).groupby(joined["region"]).sum()
pivot = joined.pivot_table(index="region", columns="product", values="revenue", aggfunc="sum")
"""
PANDAS_OUTPUTS = ("enriched", "by_region", "share", "big", "top", "cheap", "joined", "margin", "pivot")

# Shapes from /work/shared/corpus/polars (01 group_by/agg, 02 filter/select, 03 lazy, 04 join).
POLARS_PIPELINE = """\
enriched = sales.with_columns((pl.col("units") * pl.col("price")).alias("revenue"))
by_region = (
    enriched.filter(pl.col("units") > 5)
    .group_by("region")
    .agg(pl.col("revenue").sum().round(2), pl.len().alias("n"))
    .sort("revenue", descending=True)
)
top = (
    enriched.filter((pl.col("units") > 25) & (pl.col("region") != "west"))
    .group_by("region", "product")
    .agg(pl.col("revenue").sum().alias("total"), pl.col("revenue").mean().alias("mean"))
    .sort("region", "product")
)
picked = enriched.select("region", "units", "revenue").filter(pl.col("revenue") > 100)
margin = (
    enriched.join(products, on="product", how="left")
    .group_by("region")
    .agg((pl.col("revenue") * pl.col("margin")).sum().alias("margin"))
    .sort("region")
)
per_product = (
    enriched.lazy().group_by("product").agg(pl.col("units").sum(), pl.col("price").median()).sort("product").collect()
)
"""
POLARS_OUTPUTS = ("enriched", "by_region", "top", "picked", "margin", "per_product")

# The same pipeline with polars' attribute form of column references (``pl.col.units`` for
# ``pl.col("units")``): identical plans, and the form smolagents can run (see SMOLAGENTS_PL_COL).
POLARS_PIPELINE_ATTR_FORM = re.sub(r'pl\.col\("(\w+)"\)', r"pl.col.\1", POLARS_PIPELINE)

PANDAS_LOOP = """\
total = 0.0
n = 0
for row in rows.itertuples(index=False):
    if row.units > 25:
        total += row.units * row.price
        n += 1
"""

POLARS_LOOP = """\
total = 0.0
n = 0
for row in rows.iter_rows(named=True):
    if row["units"] > 25:
        total += row["units"] * row["price"]
        n += 1
"""

ATTR_NOTEBOOK_OBJECT = f"""\
acc = 0.0
for i in range({ATTR_ITERATIONS}):
    acc += cfg.scale * i + cfg.offset - cfg.inner.weight
"""

ATTR_AGENT_CLASS = f"""\
class Counter:
    def __init__(self, step):
        self.step = step
        self.total = 0

counter = Counter(3)
for i in range({ATTR_ITERATIONS}):
    counter.total = counter.total + counter.step * i - counter.step
total = counter.total
"""

# Short reasons for the table; benchmarks/harness/report.py explains them at length.
SMOLAGENTS_PL_COL = 'cannot call `pl.col("x")`, see below'
RP_WRITE_GUARD = "full_write_guard refuses `self.x = ...`, see below"
NOT_MARIMO = "not a marimo executor"


def _pipeline(lib: str, n: int, attr_form: bool = False) -> Workload:
    mod = {"pd": pd} if lib == "pandas" else {"pl": pl}

    def setup() -> dict[str, Any]:
        return {"sales": make_sales(n, lib), "products": make_products(lib), **mod}

    size = f"{n:.0e}".replace("+0", "")
    if lib == "pandas":
        return Workload(name=f"pandas_pipeline_{size}", label=f"pandas pipeline, {n:,} rows",
                        code=PANDAS_PIPELINE, setup=setup, outputs=PANDAS_OUTPUTS, rows=n)
    if attr_form:
        return Workload(name=f"polars_pipeline_attr_{size}",
                        label=f"polars pipeline, {n:,} rows, `pl.col.x` form",
                        code=POLARS_PIPELINE_ATTR_FORM, setup=setup, outputs=POLARS_OUTPUTS, rows=n)
    return Workload(name=f"polars_pipeline_{size}", label=f"polars pipeline, {n:,} rows",
                    code=POLARS_PIPELINE, setup=setup, outputs=POLARS_OUTPUTS, rows=n,
                    expect_na={"smolagents": SMOLAGENTS_PL_COL})


def _loop(lib: str) -> Workload:
    def setup() -> dict[str, Any]:
        return {"rows": make_sales(LOOP_ROWS, lib)}

    how = "itertuples" if lib == "pandas" else "iter_rows(named=True)"
    return Workload(
        name=f"{lib}_loop_10k", label=f"{lib} Python loop, {LOOP_ROWS:,} rows ({how})",
        code=PANDAS_LOOP if lib == "pandas" else POLARS_LOOP, setup=setup,
        outputs=("total", "n"), rows=LOOP_ROWS,
    )


def _attrs_setup() -> dict[str, Any]:
    return {"cfg": Config()}


def all_workloads() -> list[Workload]:
    """Every workload, in table order."""
    out = [_pipeline("pandas", n) for n in PIPELINE_SIZES]
    out += [_pipeline("polars", n) for n in PIPELINE_SIZES]
    out += [_pipeline("polars", n, attr_form=True) for n in PIPELINE_SIZES]
    out += [_loop("pandas"), _loop("polars")]
    out.append(Workload(
        name="attrs_notebook_object",
        label=f"attribute reads on a notebook object ({ATTR_ITERATIONS:,} iterations × 4)",
        code=ATTR_NOTEBOOK_OBJECT, setup=_attrs_setup, outputs=("acc",),
    ))
    out.append(Workload(
        name="attrs_agent_class",
        label=f"agent-defined class, attribute reads and writes ({ATTR_ITERATIONS:,} iterations)",
        code=ATTR_AGENT_CLASS, setup=dict, outputs=("total",),
        expect_na={"restricted": RP_WRITE_GUARD},
    ))
    out.append(Workload(
        name="marimo_roundtrip", label="marimo scratchpad round trip (`print(df.shape)` over HTTP)",
        code="print(df.shape)", setup=dict, outputs=(), kind="marimo",
        expect_na={"smolagents": NOT_MARIMO, "restricted": NOT_MARIMO},
    ))
    return out


QUICK = ("pandas_pipeline_1e3", "pandas_pipeline_1e5", "polars_pipeline_1e3", "polars_pipeline_1e5",
         "polars_pipeline_attr_1e3",
         "pandas_loop_10k", "polars_loop_10k", "attrs_notebook_object", "attrs_agent_class",
         "marimo_roundtrip")


def by_name(name: str) -> Workload:
    for w in all_workloads():
        if w.name == name:
            return w
    known = ", ".join(w.name for w in all_workloads())
    raise KeyError(f"no workload {name!r}; known: {known}")
