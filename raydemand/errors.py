"""Errors that name what is wrong and where."""

from __future__ import annotations


class TableError(ValueError):
    """A table breaks its contract. Names the file, the column and the first bad row.

    `row` counts data rows from 1 (in a CSV, row 1 is the line after the header); `None` when the
    problem is not tied to a row (a missing column).
    """

    def __init__(self, path: str, message: str, column: str | None = None, row: int | None = None, value=None):
        value = _plain(value)
        self.path, self.message, self.column, self.row, self.value = str(path), message, column, row, value
        where = [self.path]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        text = ": ".join([", ".join(where), message])
        if value is not None:
            text += f" (value: {value!r})"
        super().__init__(text)

    def __reduce__(self):
        # Rebuilt from its parts, so that it survives pickling (a Ray task raising it in a worker).
        return type(self), (self.path, self.message, self.column, self.row, self.value)


def _plain(value):
    """numpy scalars (and tuples of them) as Python values, so messages read `9`, not `np.int64(9)`."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value


class InputError(ValueError):
    """Bad user input that is not a table row: a path, a name, an option. The CLI prints it plainly."""
