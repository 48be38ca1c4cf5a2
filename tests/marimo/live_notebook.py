import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import pandas as pd
    import polars as pl

    return mo, pd, pl


@app.cell
def _(pd):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    return (df,)


@app.cell
def _(pl):
    pdf = pl.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    return (pdf,)


@app.cell
def _(mo):
    slider = mo.ui.slider(0, 10, value=3)
    slider  # noqa: B018 - the cell's output
    return (slider,)


@app.cell
def _(slider):
    doubled = slider.value * 2
    return (doubled,)


if __name__ == "__main__":
    app.run()
