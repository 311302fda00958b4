"""Cheap checks of a command's inputs, run before anything imports or starts Ray.

A wrong path should cost a user a fraction of a second and one line naming it, not a Ray start
(about 10 s and Ray's own warnings) followed by the same error. These checks look only at names
and the file system: that a TABLE resolves (file, real-layout folder or named data set), that an
image SOURCE exists, that a RUN_DIR holds a model file. Reading and validating the rows stays with
the stage. Storage URIs (s3://, gs://, file://) are left to the stage, which copies them down.
"""

from __future__ import annotations

from pathlib import Path

from raydemand.errors import InputError

FASHION_MNIST = "fashion-mnist"


def _is_uri(value: str) -> bool:
    from raydemand.jobs import is_uri

    return is_uri(value)


def table(value: str | Path, flag: str) -> str:
    """A TABLE argument: a CSV/Parquet file, a folder in a real layout, or a named data set."""
    from raydemand.data.sources import check_table

    if not _is_uri(str(value)):
        try:
            check_table(value)
        except (FileNotFoundError, InputError) as e:
            raise InputError(f"{flag}: {e}") from None
    return str(value)


def image_source(value: str | Path, flag: str, *, needs_sales: bool = False) -> str:
    """An image SOURCE: fashion-mnist, a product table (file or VISUELLE-layout folder) or a folder of
    category folders. `needs_sales`: only a product table has the sales that pick best sellers."""
    text = str(value)
    if text == FASHION_MNIST:
        if needs_sales:
            raise InputError(f"{flag}: {FASHION_MNIST} has no sales, so `top` cannot pick best sellers "
                             "(set top to null, or give a product table)")
        return text
    if _is_uri(text):
        return text
    path = Path(text)
    if not path.exists():
        raise InputError(f"{flag}: {path}: no such file or folder (an image SOURCE is '{FASHION_MNIST}', a "
                         "VISUELLE-layout product table, or a folder with one sub-folder per category)")
    if needs_sales and path.is_dir():
        from raydemand.data.sources import detect_layout

        if detect_layout(path) is None:
            raise InputError(f"{flag}: {path}: a folder of category folders has no sales, so `top` cannot pick "
                             "best sellers (set top to null, or give a product table)")
    return text


def run_dir(value: str | Path, flag: str, family: str) -> str:
    """A finished run of `family` (`--checkpoint`, `--scorer`). A folder with its COMPLETE marker
    passes on file names alone (the command's own `runs.read_model` then checks the family while it
    loads the model, so model.pt is read once); any other folder is read here, so that an unfinished,
    missing or older run fails with the run-folder module's message before Ray starts."""
    from raydemand import runs

    text = str(value)
    if _is_uri(text):
        return text
    path = Path(text)
    if not path.is_dir():
        raise InputError(f"{flag}: {path}: no such run directory")
    if not (path / runs.MARKER).is_file():
        try:
            runs.read_model(path, family)
        except InputError as exc:
            raise InputError(f"{flag}: {exc}") from None
    return text


def files(values: list[str], flag: str) -> list[str]:
    """Files that must exist (e.g. SAMPLES.npz)."""
    for value in values:
        if not _is_uri(value) and not Path(value).is_file():
            raise InputError(f"{flag}: {value}: no such file")
    return values
