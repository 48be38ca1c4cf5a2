import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _():
    import pandas as pd

    import pairproxy

    return pairproxy, pd


@app.cell
def _(pd):
    df = pd.DataFrame({"region": ["n", "s", "n"], "units": [3, 5, 2]})
    return (df,)


@app.cell
def _(pairproxy):
    pairproxy.mirror()
    return


if __name__ == "__main__":
    app.run()
