"""A user's own series: every bad input gets its message; fills are done and reported; backtest."""
import io

import numpy as np
import pytest

from nanotst.userdata import DataError, future_times, load_series_csv, parse_pasted_values

P = 8  # tiny patch size: 2 patches = 16 values


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def csv_of(values, header="value", sep=","):
    return header + "\n" + "\n".join(sep.join(map(str, v)) if isinstance(v, tuple) else str(v)
                                     for v in values) + "\n"


def load(path, **kw):
    return load_series_csv(path, patch_size=P, **kw)


def test_reads_a_simple_column(tmp_path):
    s = load(write(tmp_path, csv_of(range(20))))
    assert s.name == "value" and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.values, np.arange(20.0))
    assert s.times is None and s.notes == []


def test_picks_the_named_column_and_a_time_column(tmp_path):
    rows = [(f"2024-01-{d:02d}", d, 2 * d) for d in range(1, 21)]
    path = write(tmp_path, csv_of(rows, header="date,a,b"))
    s = load(path, column="b")
    np.testing.assert_array_equal(s.values, 2 * np.arange(1.0, 21))
    assert s.time_name == "date" and len(s.times) == 20
    assert str(s.times[0]).startswith("2024-01-01")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load(write(tmp_path, "  \n"))


def test_size_limit(tmp_path):
    path = write(tmp_path, csv_of(range(1000)))
    with pytest.raises(DataError, match="limit"):
        load(path, max_bytes=100)
    with pytest.raises(DataError, match="limit"):
        load_series_csv(io.BytesIO(b"x" * 200), max_bytes=100)


def test_no_numeric_column(tmp_path):
    with pytest.raises(DataError, match="no numeric column.*name, city"):
        load(write(tmp_path, csv_of([("ann", "oslo"), ("bob", "rome")] * 10, header="name,city")))


def test_several_numeric_columns_are_listed(tmp_path):
    path = write(tmp_path, csv_of([(i % 4, i * 2, i * 3) for i in range(20)], header="a,b,c"))
    with pytest.raises(DataError, match=r"several numeric columns \(a, b, c\).*--column"):
        load(path)


def test_an_index_column_is_not_a_candidate(tmp_path):
    path = write(tmp_path, csv_of([(i, 1950 + i, i % 3) for i in range(20)], header=",year,v"))
    s = load(path)
    assert s.name == "v" and any("index-like" in n for n in s.notes)
    s = load(write(tmp_path, csv_of([(1950 + i, i % 3) for i in range(20)], header="year,v")))
    assert s.name == "v" and s.time_name == "year" and s.times[0] == 1950


def test_unknown_column(tmp_path):
    path = write(tmp_path, csv_of([(i, i) for i in range(20)], header="a,b"))
    with pytest.raises(DataError, match="unknown column 'z'.*a, b"):
        load(path, column="z")


def test_text_in_the_column_names_its_line(tmp_path):
    values = [str(i) for i in range(20)]
    values[6] = "oops"
    with pytest.raises(DataError, match="column 'value' has text 'oops' at line 8"):
        load(write(tmp_path, csv_of(values)))
    with pytest.raises(DataError, match="'oops' at line 8"):
        load(write(tmp_path, csv_of([(i, v) for i, v in enumerate(values)], header="i,value")),
             column="value")


def test_nan_and_inf_need_a_fill(tmp_path):
    values = [str(float(i)) for i in range(20)]
    values[3], values[9] = "NA", "inf"
    path = write(tmp_path, csv_of(values))
    with pytest.raises(DataError, match="2 missing or infinite values.*line 5.*--fill interpolate"):
        load(path)
    s = load(path, fill="interpolate")
    np.testing.assert_allclose(s.values, np.arange(20.0))
    assert "filled 2 missing values by interpolation" in s.notes


def test_interpolate_trims_missing_ends(tmp_path):
    values = ["NaN"] * 5 + [str(i) for i in range(20)] + ["NA"]
    s = load(write(tmp_path, csv_of(values)), fill="interpolate")
    np.testing.assert_array_equal(s.values, np.arange(20.0))
    assert "trimmed 5 missing values at the start" in s.notes
    assert "trimmed 1 missing values at the end" in s.notes


def test_semicolon_file_is_sniffed_with_decimal_commas(tmp_path):
    rows = [(i, f"{i},5") for i in range(20)]
    s = load(write(tmp_path, csv_of(rows, header="t;v", sep=";")), column="v")
    np.testing.assert_allclose(s.values, np.arange(20) + 0.5)
    assert any("';'-separated" in n for n in s.notes)


def test_a_wrong_delimiter_is_called_out(tmp_path):
    # every line quoted: the sniffer sees one column whose cells all hold ';'
    lines = ["x;y"] + [f"{i};{i}" for i in range(20)]
    quoted = "\n".join(f'"{line}"' for line in lines) + "\n"
    with pytest.raises(DataError, match="read as one column.*';'"):
        load(write(tmp_path, quoted))


def test_headerless_file(tmp_path):
    s = load(write(tmp_path, "\n".join(str(i) for i in range(20)) + "\n"))
    np.testing.assert_array_equal(s.values, np.arange(20.0))
    assert any("no header row" in n for n in s.notes)


def test_too_short(tmp_path):
    # one patch is enough now (a shorter context is padded, not trimmed)
    with pytest.raises(DataError, match="only 5 values.*at least 8"):
        load(write(tmp_path, csv_of(range(5))))
    assert len(load(write(tmp_path, csv_of(range(10))))) == 10


def test_reads_an_uploaded_buffer():
    s = load_series_csv(io.BytesIO(csv_of(range(20)).encode()), patch_size=P)
    assert len(s) == 20


def test_parse_pasted_values():
    s = parse_pasted_values("1, 2 3;4\n5 6 7 8 9 10 11 12 13 14 15 16.5e0", patch_size=P)
    np.testing.assert_array_equal(s.values, [*range(1, 16), 16.5])
    with pytest.raises(DataError, match="'x' \\(value 3\\) is not a number"):
        parse_pasted_values("1 2 x", patch_size=P)
    with pytest.raises(DataError, match="nothing to read"):
        parse_pasted_values("  ", patch_size=P)
    with pytest.raises(DataError, match="at least 8"):
        parse_pasted_values("1 2 3", patch_size=P)
    with pytest.raises(DataError, match="missing"):
        parse_pasted_values(" ".join(["1"] * 20 + ["nan"]), patch_size=P)
    filled = parse_pasted_values(" ".join(["1", "nan", "3"] + ["4"] * 20), fill="interpolate",
                                 patch_size=P)
    assert filled.values[1] == 2.0 and filled.notes == ["filled 1 missing values by interpolation"]


def test_future_times_continue_the_spacing():
    months = np.array(["2001-10-01", "2001-11-01", "2001-12-01"], dtype="datetime64[ns]")
    fut = future_times(months, 3)
    assert [str(t)[:10] for t in fut] == ["2002-01-01", "2002-02-01", "2002-03-01"]
    gappy = np.array(["2001-01-01", "2001-02-01", "2001-04-01", "2001-05-01"], dtype="datetime64[ns]")
    assert str(future_times(gappy, 1)[0])[:10] == "2001-06-01"
    years = future_times(np.array([1700, 1701, 1702]), 2)
    assert years.tolist() == [1703, 1704] and years.dtype.kind == "i"
    assert future_times(np.array([0.0, 0.5, 1.0]), 2).tolist() == [1.5, 2.0]
    assert future_times(np.array(["a", "b", "c"], dtype=object), 2) is None
    assert future_times(None, 2) is None
