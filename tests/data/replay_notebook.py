import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import numpy as np
    import pandas as pd
    import polars as pl

    return np, pd, pl


@app.cell
def _(np, pd):
    rng = np.random.default_rng(7)
    sales = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], 200),
            "units": rng.integers(1, 20, 200),
            "price": rng.random(200).round(2),
        }
    )
    return (sales,)


@app.cell
def _(pl, sales):
    sales_pl = pl.from_pandas(sales)
    return (sales_pl,)


@app.cell
def _():
    threshold = 10
    return (threshold,)


if __name__ == "__main__":
    app.run()
