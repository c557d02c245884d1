"""Text tables, as the scripts print them (fixed width) and as RESULTS.md has them (GitHub markdown), with pandas.

    print(fixed_width(pd.DataFrame({"Exp": ["1"], "Val %": ["95.21"]})))
"""


def fixed_width(frame):
    """`frame`'s header and cells right-aligned in columns two spaces apart, as the scripts print tables.

    By hand: DataFrame.to_string separates columns by one space and left-aligns the index.
    """
    rows = [[str(c) for c in frame.columns], *frame.astype(str).to_numpy().tolist()]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def markdown(frame, align):
    """A GitHub table of `frame`'s header and cells as they are; `align`: 'l' or 'r' per column.

    By hand: DataFrame.to_markdown needs tabulate, which is not a dependency.
    """
    rule = ["---:" if a == "r" else "---" for a in align]
    rows = [[str(c) for c in frame.columns], rule, *frame.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
