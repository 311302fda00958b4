"""Readers of the real VISUELLE v1 and VISUELLE 2.0 folders, on tiny hand-written copies.

Headers and rows follow the real files (see docs/data/visuelle.md); weekly values the sources
quote only in part are completed with multiples of the real scalars (1/1065 for v1, 1/53 for v2).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import raydemand.data.visuelle  # noqa: F401  (registers the layouts detect_layout looks for)
from raydemand.cli import main
from raydemand.data.sources import detect_layout, load_products
from raydemand.errors import InputError, TableError

V1_HEADER = "0,1,2,3,4,5,6,7,8,9,10,11,external_code,season,category,release_date,day,week,month,year,image_path,color,fabric,extra"
V1_TRAIN = [
    "0.0046948356807511,0.0732394366197183,0.0619718309859154,0.0666666666666666,0.0460093896713615,0.0431924882629108,"
    "0.0262910798122065,0.0197183098591549,0.012206572769953,0.0140845070422535,0.0103286384976525,0.0093896713615023,"
    "1,SS17,long sleeve,2016-12-01,0.5,0.9230769230769232,1.0,0.99851411589896,PE17/00001.png,yellow,acrylic,hem",
    # A return shows up as a negative week (-1/1065).
    "0.0253521126760563,0.0197183098591549,0.0187793427230046,-0.0009389671361502,0.0131455399061032,0.0112676056338028,"
    "0.0093896713615023,0.0075117370892018,0.0065727699530516,0.0056338028169014,0.0046948356807511,0.0244131455399061,"
    "81,SS17,culottes,2017-01-10,0.1666666666666666,0.0384615384615384,0.0833333333333333,0.9990094105993066,PE17/00081.png,black,georgette,hem",
]
V1_TEST = [
    "0.0328638497652582,0.0629107981220657,0.0553990610328638,0.0478873239436619,0.0394366197183098,0.0328638497652582,"
    "0.0262910798122065,-0.0009389671361502,0.0187793427230046,-0.0018779342723004,0.0150234741784037,0.0140845070422535,"
    "5081,SS19,short sleeves,2019-04-17,0.3333333333333333,0.3076923076923077,0.3333333333333333,1.0,PE19/05081.png,grey,georgette,hem",
    "0.0244131455399061,0.1136150234741784,0.0985915492957746,0.0845070422535211,0.0713615023474178,0.0610328638497652,"
    "0.0544600938967136,0.0525821596244131,0.0507042253521126,0.0497652582159624,0.0488262910798122,0.0478873239436619,"
    "5331,AW19,solid colours,2019-10-25,0.6666666666666666,0.8269230769230769,0.8333333333333334,1.0,AI19/05331.png,green,tulle,hem",
]

V2_HEADER = "external_code,retail,season,category,color,image_path,fabric,release_date,restock,0,1,2,3,4,5,6,7,8,9,10,11"
V2_TRAIN = [
    "1,100,SS17,long sleeve,yellow,PE17/00001.png,acrylic,2016-12-05,0.2264150943396226,0.0188679245283018,"
    "0.0566037735849056,0.0377358490566037,0.0377358490566037,0.0188679245283018,0.0,0.0188679245283018,0.0,0.0,0.0,0.0,0.0",
    "1,101,SS17,long sleeve,yellow,PE17/00001.png,acrylic,2016-12-07,0.1320754716981132,0.0,0.0188679245283018,"
    "0.0188679245283018,0.0,0.0,0.0188679245283018,0.0,0.0,0.0,0.0,0.0188679245283018,0.0",
    "2,100,AW17,long coat,black,AI17/00002.png,cloth,2017-09-04,0.1886792452830188,0.0377358490566037,"
    "0.0377358490566037,0.0188679245283018,0.0188679245283018,0.0,0.0,0.0,0.0188679245283018,0.0,0.0,0.0,0.0",
]
V2_TEST = [
    # The notebook row: external_code 5198 in store 100, restock 17/53, first week 1/53.
    "5198,100,SS19,culottes,grey,PE19/05198.png,linen,2019-05-06,0.320755,0.0188679245283018,"
    "0.0377358490566037,0.0566037735849056,0.0377358490566037,0.0188679245283018,0.0188679245283018,0.0,"
    "0.0188679245283018,0.0,0.0,0.0,0.0",
    "5198,101,SS19,culottes,grey,PE19/05198.png,linen,2019-05-08,0.1509433962264151,0.0,0.0188679245283018,"
    "0.0188679245283018,0.0,0.0188679245283018,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "5199,100,SS19,sheath dress,blue,PE19/05199.png,cotton,2019-05-13,0.0754716981132075,0.0188679245283018,"
    "0.0,0.0,0.0188679245283018,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
]
# price_discount_series.csv: pandas' unnamed index first; 5199/100 has no price row on purpose.
V2_PRICES = [
    ",external_code,retail,0,1,2,3,4,5,6,7,8,9,10,11,price",
    "0,1,100,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.3,0.3,0.3,0.3,0.3,0.076931",
    "1,1,101,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.3,0.3,0.3,0.3,0.3,0.076931",
    "2,2,100,0.0,0.0,0.0,0.0,0.0,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.254",
    "3,5198,100,0.0,0.0,0.0,0.0,0.0,0.0,0.15,0.15,0.15,0.15,0.15,0.15,0.011",
    "4,5198,101,0.0,0.0,0.0,0.0,0.0,0.0,0.15,0.15,0.15,0.15,0.15,0.15,0.011",
]


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _images(folder: Path, rows: list[str], column: int) -> None:
    for row in rows:
        path = folder / "images" / row.split(",")[column]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (6, 8), (200, 30, 30, 255)).save(path)


def make_v2(folder: Path, train=V2_TRAIN, test=V2_TEST) -> Path:
    folder.mkdir()
    _write(folder / "stfore_train.csv", [V2_HEADER, *train])
    _write(folder / "stfore_test.csv", [V2_HEADER, *test])
    _write(folder / "price_discount_series.csv", V2_PRICES)
    np.save(folder / "stfore_sales_norm_scalar.npy", np.array(53.0))
    _images(folder, train + test, column=5)
    return folder


def make_v1(folder: Path) -> Path:
    folder.mkdir()
    _write(folder / "train.csv", [V1_HEADER, *V1_TRAIN])
    _write(folder / "test.csv", [V1_HEADER, *V1_TEST])
    _write(folder / "gtrends.csv", ["date,long sleeve,culottes,short sleeves,solid colours,yellow,black,grey,green,"
                                    "acrylic,georgette,tulle",
                                    "2015-10-05,55.0,41.0,58.0,24.0,83,66,77,79,57,25,81",
                                    "2015-10-12,55.0,44.0,71.0,37.0,80,63,75,77,55,27,80"])
    np.save(folder / "normalization_scale.npy", np.array([1065.0]))
    _images(folder, V1_TRAIN + V1_TEST, column=20)
    return folder


def test_visuelle2_maps_onto_the_product_contract(tmp_path):
    folder = make_v2(tmp_path / "vis2")
    assert detect_layout(folder).name == "visuelle2"
    df = load_products(folder)
    assert len(df) == 6
    assert df["split"].tolist() == ["train"] * 3 + ["test"] * 3
    assert df["external_code"].tolist() == ["1", "1", "2", "5198", "5198", "5199"]
    assert df["retail"].tolist() == [100, 101, 100, 100, 101, 100]
    assert pd.api.types.is_datetime64_any_dtype(df["release_date"])
    assert df["release_date"].iloc[3] == pd.Timestamp("2019-05-06")
    assert df["image_path"].iloc[3] == str(folder / "images" / "PE19" / "05198.png")
    assert all(Path(p).is_file() for p in df["image_path"])
    # Targets stay normalised as stored; restock too.
    assert df["0"].iloc[3] == pytest.approx(1 / 53)
    assert df["restock"].iloc[3] == pytest.approx(17 / 53, abs=1e-6)
    assert df[["category", "color", "fabric", "season"]].iloc[3].tolist() == ["culottes", "grey", "linen", "SS19"]
    np.testing.assert_allclose(df["price"].to_numpy()[:5], [0.076931, 0.076931, 0.254, 0.011, 0.011])
    assert np.isnan(df["price"].iloc[5])  # no price row for 5199 in store 100


def test_visuelle2_split_and_scalar(tmp_path):
    from raydemand.data.visuelle import read_norm_scalar

    folder = make_v2(tmp_path / "vis2")
    test = load_products(folder, split="test")
    assert test["external_code"].tolist() == ["5198", "5198", "5199"]
    assert set(test["split"]) == {"test"}
    assert set(load_products(folder, split="train")["split"]) == {"train"}
    assert read_norm_scalar(folder) == 53.0
    with pytest.raises(InputError, match="split"):
        load_products(folder, split="validation")


def test_visuelle1_clips_returns_and_keeps_extra_columns(tmp_path, caplog):
    from raydemand.data.visuelle import read_norm_scalar

    folder = make_v1(tmp_path / "vis1")
    assert detect_layout(folder).name == "visuelle"
    with caplog.at_level(logging.WARNING, logger="raydemand.data.visuelle"):
        df = load_products(folder)
    assert df["external_code"].tolist() == ["1", "81", "5081", "5331"]
    assert df["split"].tolist() == ["train", "train", "test", "test"]
    assert (df[[str(i) for i in range(12)]].to_numpy() >= 0).all()
    assert df["3"].iloc[1] == 0.0 and df["7"].iloc[2] == 0.0 and df["9"].iloc[2] == 0.0
    assert df["1"].iloc[0] == pytest.approx(78 / 1065)
    messages = [r.getMessage() for r in caplog.records]
    assert any("train.csv" in m and " 1 negative" in m for m in messages)
    assert any("test.csv" in m and " 2 negative" in m for m in messages)
    assert df[["day", "week", "extra"]].iloc[0].tolist() == [0.5, pytest.approx(48 / 52), "hem"]
    assert df["image_path"].iloc[3] == str(folder / "images" / "AI19" / "05331.png")
    assert read_norm_scalar(folder) == 1065.0


def _replace(path: Path, row: int, column: str, value: str) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[row].split(",")
    fields[header.index(column)] = value
    lines[row] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def test_bad_date_names_file_column_and_row(tmp_path):
    folder = make_v2(tmp_path / "vis2")
    _replace(folder / "stfore_test.csv", 2, "release_date", "2019-13-45")
    with pytest.raises(TableError) as err:
        load_products(folder)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("stfore_test.csv", "release_date", 2)


def test_missing_image_names_file_column_and_row(tmp_path):
    folder = make_v2(tmp_path / "vis2")
    (folder / "images" / "PE19" / "05199.png").unlink()
    with pytest.raises(TableError, match="05199.png") as err:
        load_products(folder)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("stfore_test.csv", "image_path", 3)


def test_duplicate_product_and_store_is_an_error(tmp_path):
    within = make_v2(tmp_path / "within", test=[*V2_TEST, V2_TEST[1]])
    with pytest.raises(TableError, match="duplicate") as err:
        load_products(within)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("stfore_test.csv", "retail", 4)

    across = make_v2(tmp_path / "across", test=[*V2_TEST, V2_TRAIN[2]])
    with pytest.raises(TableError, match="stfore_train.csv") as err:
        load_products(across)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("stfore_test.csv", "retail", 4)


def test_tables_without_images_folder(tmp_path):
    folder = make_v2(tmp_path / "vis2")
    for path in sorted((folder / "images").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (folder / "images").rmdir()
    assert len(load_products(folder, check_images=False)) == 6
    with pytest.raises(TableError) as err:
        load_products(folder)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("stfore_train.csv", "image_path", 1)


def test_cli_validate(tmp_path, capsys):
    folder = make_v2(tmp_path / "vis2")
    assert main(["data", "validate", "--products", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["products"], summary["with_image"]) == (6, 4, 6)
    assert summary["release_dates"] == ["2016-12-05", "2019-05-13"]

    _replace(folder / "stfore_test.csv", 1, "0", "many")
    assert main(["data", "validate", "--products", str(folder)]) == 2
    assert "stfore_test.csv, column '0', row 1: not a number" in capsys.readouterr().err


V2_TRENDS = ["date,long sleeve,long coat,culottes,sheath dress,yellow,black,grey,blue,acrylic,cloth,linen,cotton",
             "2016-11-28,40.0,55.0,30.0,61.0,22,80,45,50,10,70,15,66",
             "2016-12-05,42.0,54.0,31.0,60.0,,79,44,51,11,71,16,67"]


def test_trend_series_of_both_layouts(tmp_path):
    from raydemand.data.sources import load_trends

    v1 = load_trends(make_v1(tmp_path / "vis1"))
    assert list(v1.columns)[:3] == ["date", "long sleeve", "culottes"] and len(v1.columns) == 12
    assert v1["date"].tolist() == [pd.Timestamp("2015-10-05"), pd.Timestamp("2015-10-12")]
    assert v1["short sleeves"].tolist() == [58.0, 71.0] and v1["tulle"].dtype == np.float64

    v2 = make_v2(tmp_path / "vis2")
    assert load_trends(v2) is None  # a VISUELLE 2.0 folder without vis2_gtrends_data.csv
    # the real file may be written with pandas' unnamed index; rows in any order; empty cells are NaN
    _write(v2 / "vis2_gtrends_data.csv", [",".join(["", V2_TRENDS[0]]), "0," + V2_TRENDS[2], "1," + V2_TRENDS[1]])
    trends = load_trends(v2)
    assert trends["date"].tolist() == [pd.Timestamp("2016-11-28"), pd.Timestamp("2016-12-05")]
    assert trends["long coat"].tolist() == [55.0, 54.0] and np.isnan(trends["yellow"].iloc[1])
    table = tmp_path / "plain.csv"
    load_products(v2).to_csv(table, index=False)
    assert load_trends(table) is None  # plain tables (and Complete Journey) ship no series
    assert load_trends("completejourney") is None


@pytest.mark.parametrize("row, column, value, message", [
    (2, "date", "2016-13-05", "not an ISO date"),
    (1, "black", "lots", "not a number"),
    (2, "date", "2016-11-28", "duplicate date"),
])
def test_bad_trend_values_name_file_column_and_row(tmp_path, row, column, value, message):
    from raydemand.data.sources import load_trends

    folder = make_v2(tmp_path / "vis2")
    _write(folder / "vis2_gtrends_data.csv", V2_TRENDS)
    _replace(folder / "vis2_gtrends_data.csv", row, column, value)
    with pytest.raises(TableError, match=message) as err:
        load_trends(folder)
    assert (Path(err.value.path).name, err.value.column, err.value.row) == ("vis2_gtrends_data.csv", column, row)


def test_trend_file_without_date_column(tmp_path):
    from raydemand.data.sources import load_trends

    folder = make_v2(tmp_path / "vis2")
    _write(folder / "vis2_gtrends_data.csv", ["week," + V2_TRENDS[0].split(",", 1)[1], *V2_TRENDS[1:]])
    with pytest.raises(TableError, match="missing required column") as err:
        load_trends(folder)
    assert (Path(err.value.path).name, err.value.column) == ("vis2_gtrends_data.csv", "date")
