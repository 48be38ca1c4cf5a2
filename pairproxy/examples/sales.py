import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import pandas as pd

    return mo, pd


@app.cell
def _(mo):
    mo.md("""
    # Quarterly sales

    The example notebook of `pairproxy demo`: an agent pairs with it through
    marimo's scratchpad, under the owner's policy.
    """)
    return


@app.cell
def _(pd):
    sales = pd.DataFrame(
        {
            "region": ["north", "south", "east", "west", "north", "south", "east", "west"],
            "quarter": ["Q1", "Q1", "Q1", "Q1", "Q2", "Q2", "Q2", "Q2"],
            "units": [120, 95, 143, 88, 131, 102, 150, 97],
            "revenue": [14400.0, 11875.0, 17160.0, 10560.0, 15720.0, 12750.0, 18000.0, 11640.0],
        }
    )
    sales  # noqa: B018 - the cell's output
    return (sales,)


@app.cell
def _(sales):
    targets = {"north": 30000.0, "south": 25000.0, "east": 33000.0, "west": 22000.0}
    total_revenue = float(sales["revenue"].sum())
    return targets, total_revenue


if __name__ == "__main__":
    app.run()
