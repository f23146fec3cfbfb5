"""The report's tables: rich's on a terminal, plain `|`-separated rows elsewhere.

Off a terminal (a pre-commit hook, a CI log, a pipe) nobody sees colours or boxes, and rich
lays out every cell of every row (measures, wraps, crops: 0.8 s of a 1.8 s warm check of
256 sites, docs/performance.md "Where the time goes"). There the same columns and cells are
written as aligned text, one row per line, in a few milliseconds; on a terminal rich draws
them as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Grid:
    columns: Sequence[str]
    title: str | None = None
    rows: list[tuple[str, ...]] = field(default_factory=list)
    styles: list[dict[int, str]] = field(default_factory=list)

    def add_row(self, *cells: str, styles: dict[int, str] | None = None) -> None:
        """One row of plain text (never markup); `styles`: a rich style per cell index,
        used on a terminal only."""
        assert len(cells) == len(self.columns), (cells, self.columns)
        self.rows.append(cells)
        self.styles.append(styles or {})

    def print(self, console: Console) -> None:
        if console.is_terminal:
            self._rich(console)
        else:
            console.file.write(self.plain())

    def plain(self) -> str:
        """`| a | b |` rows under a header and a rule, each column as wide as its widest cell."""
        # A cell's own line breaks would break the row: shown as spaces.
        cells = [tuple(self.columns),
                 *(tuple(" ".join(c.split("\n")) for c in row) for row in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]

        def line(row: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |\n"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|\n"
        head = f"{self.title}\n" if self.title else ""
        return head + line(cells[0]) + rule + "".join(line(row) for row in cells[1:])

    def _rich(self, console: Console) -> None:
        from rich.table import Table  # noqa: PLC0415 (a terminal only)
        from rich.text import Text  # noqa: PLC0415

        table = Table(title=self.title)
        for column in self.columns:
            table.add_column(column, overflow="fold")
        for row, styles in zip(self.rows, self.styles, strict=True):
            table.add_row(*(Text(cell, style=styles.get(i, "")) for i, cell in enumerate(row)))
        console.print(table)
