import pandas as pd
import pytest

from raydemand.io import atomic_dir, atomic_write, read_table, write_table


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_appears_only_when_complete(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "a.csv").write_text("x")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("x")
    assert (out / "a.csv").read_text() == "x"
    with pytest.raises(FileExistsError, match="--overwrite"):
        with atomic_dir(out):
            pass
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.csv").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["b.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.csv.gz"])
def test_tables_round_trip(tmp_path, name):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_table(df, tmp_path / name)
    back = read_table(tmp_path / name)
    assert back["a"].tolist() == [1, 2] and back["b"].tolist() == ["x", "y"]


def test_unknown_table_format(tmp_path):
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(ValueError, match="unknown table format"):
        read_table(tmp_path / "t.xlsx")


def test_atomic_write_gives_plain_file_permissions(tmp_path):
    import os
    import stat

    from raydemand.io import _UMASK, atomic_write

    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "out.bin").st_mode) == 0o666 & ~_UMASK
