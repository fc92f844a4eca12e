"""Printing rich tables on a terminal of any width without cutting a header or a cell short.

Rich squeezes a table that is wider than the console column by column, down to headers cut to
one letter and an ellipsis ("Te…"). ``fitted(table)`` lays the table out when it is printed, for
the console's width: unchanged when it fits; else with column widths that keep every header
word whole (headers wrap over lines), and every cell word whole where the width allows (a
longer word folds onto the next line: nothing is cut); or, with ``keep``, as several tables,
one under the other, each with some of the columns and the first ``keep`` columns repeated
(a leaderboard's rank and method): each at its natural width (``pack="natural"``: numbers do
not wrap), or each with its words whole (``pack="words"``: text wraps).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Iterable, Iterator

from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

#: the narrowest a Foldable cell asks its column to be
FOLD_WIDTH = 12


class Foldable:
    """A cell of free text that may fold anywhere (a plugin's error message, a path): its longest
    word does not widen its column."""

    def __init__(self, text: str, style: str = "") -> None:
        self.text = Text(text, style=style, overflow="fold")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield self.text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = Measurement.get(console, options, self.text).maximum
        return Measurement(min(FOLD_WIDTH, widest), widest)

    def __str__(self) -> str:
        return self.text.plain


def fitted(table: Table, keep: int | None = None, pack: str = "natural") -> "Fitted":
    """``table`` laid out for the width it is printed at (see the module's docstring)."""
    return Fitted(table, keep, pack)


@dataclasses.dataclass
class _Widths:
    header: int  # the header's longest word (the whole text of a no_wrap column's cells too)
    word: int  # the longest word of header and cells
    natural: int  # the longest line of header and cells


class Fitted:
    def __init__(self, table: Table, keep: int | None = None, pack: str = "natural") -> None:
        if pack not in ("natural", "words"):
            raise ValueError(f"pack must be 'natural' or 'words', not {pack!r}")
        self.table, self.keep, self.pack = table, keep, pack

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        width = options.max_width
        table = self.table
        sizes = [_measure(console, options, column) for column in table.columns]
        if sum(s.natural for s in sizes) + _overhead(table, len(sizes)) <= width:
            yield table  # as it is: fits
            return
        if self.keep is None or len(sizes) <= self.keep + 1:
            yield _laid_out(table, list(range(len(sizes))), sizes, width)
            return
        natural = self.pack == "natural"
        parts = _split(table, [s.natural if natural else s.word for s in sizes], self.keep, width, even=natural)
        for n, columns in enumerate(parts):
            part = _laid_out(table, columns, sizes, width)
            if n:
                part.title = None
            if n < len(parts) - 1:
                part.caption = None
            yield part

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def _measure(console: Console, options: ConsoleOptions, column: Column) -> _Widths:
    header = Measurement.get(console, options, column.header) if column.header != "" else Measurement(0, 0)
    cells = [Measurement.get(console, options, cell) for cell in column.cells]
    word = max([header.minimum, *(c.minimum for c in cells)])
    natural = max([header.maximum, *(c.maximum for c in cells)])
    if column.no_wrap:  # its cells are never wrapped: all of each must fit
        whole = max([0, *(c.maximum for c in cells)])
        return _Widths(max(header.minimum, whole), max(word, whole), natural)
    return _Widths(header.minimum, word, natural)


def _overhead(table: Table, columns: int) -> int:
    """The characters a table of ``columns`` columns adds to its cells: borders and padding."""
    _, right, _, left = table.padding
    borders = (2 if table.show_edge else 0) + max(columns - 1, 0) if table.box else 0
    edges = 0 if table.pad_edge else left + right
    return borders + columns * (left + right) - edges


def _split(table: Table, sizes: list[int], keep: int, width: int, even: bool) -> list[list[int]]:
    """The columns of each part: the first ``keep`` in every part, the others in order, in as
    few parts as fit at ``sizes`` (at least one column each); with ``even``, evened out where
    the even parts fit too (else the first parts are the fullest)."""
    kept, rest = list(range(keep)), list(range(keep, len(sizes)))
    fits = lambda part: sum(sizes[i] for i in part) + _overhead(table, len(part)) <= width  # noqa: E731
    parts: list[list[int]] = []
    current: list[int] = []
    for index in rest:
        if current and not fits(kept + current + [index]):
            parts.append(kept + current)
            current = []
        current.append(index)
    parts.append(kept + current)
    if not even:
        return parts
    count, extra = divmod(len(rest), len(parts))
    bounds = [0]
    for n in range(len(parts)):
        bounds.append(bounds[-1] + count + (n < extra))
    even = [kept + rest[a:b] for a, b in zip(bounds, bounds[1:])]
    return even if all(map(fits, even)) else parts


def _laid_out(table: Table, indices: list[int], sizes: list[_Widths], width: int) -> Table:
    """A copy of ``table`` with the columns ``indices``, each given a width: every header word
    whole, then as many cell words whole as fit, then the rest of the room shared by what the
    columns lack of their natural width. When not even the headers' words fit, every column
    folds (rich's own layout, but nothing cut with an ellipsis)."""
    room = width - _overhead(table, len(indices))
    chosen = [sizes[i] for i in indices]
    widths = [s.header for s in chosen]
    if sum(widths) > room:
        columns = [dataclasses.replace(table.columns[i], no_wrap=False, overflow="fold") for i in indices]
    else:
        for target in ([s.word for s in chosen], [s.natural for s in chosen]):
            widths = _grow(widths, target, room - sum(widths))
        # no_wrap off: a no_wrap column's width holds its whole cells already, and its header may wrap
        columns = [dataclasses.replace(table.columns[i], width=max(w, 1), overflow="fold", no_wrap=False) for i, w in zip(indices, widths)]
    part = copy.copy(table)
    part.columns = columns
    return part


def _grow(widths: list[int], targets: Iterable[int], extra: int) -> list[int]:
    """``widths`` grown towards ``targets`` by ``extra`` characters at most, each in proportion
    to what it lacks (all of it when the room suffices)."""
    targets = list(targets)
    lack = [max(t - w, 0) for w, t in zip(widths, targets)]
    total = sum(lack)
    if extra <= 0 or total == 0:
        return widths
    if total <= extra:
        return [w + d for w, d in zip(widths, lack)]
    shares = [extra * d // total for d in lack]
    left = extra - sum(shares)
    for i in sorted(range(len(lack)), key=lambda i: lack[i] - shares[i], reverse=True)[:left]:
        shares[i] += 1
    return [w + s for w, s in zip(widths, shares)]


def print_fitted(console: Console, tables: Any, keep: int | None = None, pack: str = "natural") -> None:
    """Print each of ``tables`` (one Table or several) fitted to ``console``'s width."""
    for table in [tables] if isinstance(tables, Table) else tables:
        console.print(fitted(table, keep, pack))
