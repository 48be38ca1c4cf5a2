import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import pandas as pd

    return (pd,)


@app.cell
def _(pd):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    return (df,)


if __name__ == "__main__":
    app.run()
