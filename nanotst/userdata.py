"""A user's own series: read a CSV or pasted numbers, check them; the shipped example series;
the time axis a series comes with, continued past its end.

Every problem with the input becomes a DataError with a one-line message that says what is wrong
and what to do, so the CLI and the app can show it as it is. Whatever was changed silently
(a delimiter sniffed, missing values filled, a header guessed) is listed in UserSeries.notes.
"""
from __future__ import annotations

import csv
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FILLS = (None, "interpolate")
MAX_LINE_CHARS = 100_000     # the csv module refuses fields over 131,072 characters
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.I)
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")


class DataError(ValueError):
    """The user's data cannot be used as it is; the one-line message says why."""


@dataclass
class UserSeries:
    """One numeric series from the user, ready to forecast."""
    values: np.ndarray                 # (T,) float64, finite
    name: str                          # the column's name ("pasted" for pasted values)
    times: np.ndarray | None = None    # (T,) the time column's values, when there is one
    time_name: str | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


# ---------------------------------------------------------------------------------------------
# Reading

def _read_text(source, max_bytes: int) -> str:
    """Read a path or a file-like object (bytes or text), refusing more than max_bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise DataError(f"{path} is a folder, not a CSV file")
        if os.path.exists(path) and not os.path.isfile(path):
            # a FIFO or a device: reading it could block forever or never end
            raise DataError(f"{path} is not a regular file (a pipe or a device); save the data to a file")
        if not os.path.isfile(path):
            raise DataError(f"file not found: {path}")
        size = os.path.getsize(path)
        if size > max_bytes:
            raise DataError(f"{os.path.basename(path)} is {size / 1e6:.1f} MB; the limit is "
                            f"{max_bytes / 1e6:.1f} MB")
        with open(path, "rb") as fh:
            raw = fh.read()
    else:
        raw = source.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise DataError(f"the file is over the {max_bytes / 1e6:.1f} MB limit")
    if isinstance(raw, bytes):
        raw = _decode(raw)
    if not raw.strip():
        raise DataError("the file is empty")
    return raw


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), UTF-16 or UTF-32 with a BOM, else Latin-1."""
    for bom, encoding in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                          (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise DataError(f"the file starts like {encoding.upper()} text but is not valid "
                                f"{encoding.upper()}; save it as UTF-8") from None
    if raw[:200].count(b"\x00") > 10:   # UTF-16 without a BOM: every other byte is 0
        raise DataError("the file looks like UTF-16 text without a byte-order mark; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _is_number(token: str) -> bool:
    return bool(_NUMBER.match(token.strip()))


def _parse_table(text: str, notes: list[str]) -> pd.DataFrame:
    sep = _sniff_delimiter(text)
    if sep != ",":
        notes.append(f"read the file as {'tab' if sep == chr(9) else repr(sep)}-separated")
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0]
    longest = max(len(line) for line in lines)
    if longest > MAX_LINE_CHARS:
        raise DataError(f"a line of the file is {longest:,} characters long (at most {MAX_LINE_CHARS:,}): "
                        f"is this a CSV with one value per row?")
    _check_one_delimiter(lines[:50], sep)
    header = not all(_is_number(tok) for tok in first.split(sep) if tok.strip())
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None,
                            skipinitialspace=True, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise DataError(f"could not read the file as CSV: {msg}") from None
    if not header:
        frame.columns = ["value"] if frame.shape[1] == 1 else [f"column {i + 1}" for i in frame.columns]
        notes.append("the file has no header row; named the column(s) "
                     + ", ".join(map(str, frame.columns)))
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError("the file has a header but no data rows")
    return frame


def _check_one_delimiter(lines: list[str], sep: str) -> None:
    """A header split by one delimiter and rows by another would be read as nonsense columns."""
    counts = [len(fields) for fields in csv.reader(lines, delimiter=sep)]  # quote-aware
    rows = sorted(counts[1:])
    if rows and counts[0] != rows[len(rows) // 2]:
        name = lambda c: "tab" if c == "\t" else repr(c)
        other = next((c for c in ",;\t|" if c != sep and (lines[0].count(c) > 0) != (lines[1].count(c) > 0)), None)
        found = f"; the other delimiter is {name(other)}" if other else ""
        raise DataError(f"the header and the rows use different delimiters ({name(sep)} in one, "
                        f"not the other{found}): save the file with one delimiter throughout")


_MISSING = {"", "na", "nan", "n/a", "null", "none", "-", "?"}


def _numeric_share(col: pd.Series) -> float:
    """Share of the non-missing cells that are numbers (decimal points or decimal commas)."""
    cells = col.str.strip()
    cells = cells[~cells.str.lower().isin(_MISSING)]
    if cells.empty:
        return 0.0
    ok = cells.map(lambda c: _is_number(c) or bool(_COMMA_DECIMAL.match(c)))
    return float(ok.mean())


def _to_float(col: pd.Series, name: str, header_lines: int) -> np.ndarray:
    """Text cells to float64; missing markers to NaN; text is an error naming its line."""
    out = np.empty(len(col))
    for i, cell in enumerate(col.str.strip()):
        if cell.lower() in _MISSING:
            out[i] = np.nan
        elif _is_number(cell):
            out[i] = float(cell)
        elif _COMMA_DECIMAL.match(cell):
            out[i] = float(cell.replace(",", "."))
        else:
            raise DataError(f"column {name!r} has text {cell[:30]!r} at line {i + 1 + header_lines} "
                            f"of the file; it must hold numbers only")
    return out


def _wrong_delimiter_hint(frame: pd.DataFrame) -> str | None:
    """A one-column table whose cells hold another separator was split wrongly."""
    if frame.shape[1] != 1:
        return None
    cells = frame.iloc[:, 0].head(20).astype(str)
    for sep in (";", "\t", "|", ",", " "):
        if len(cells) and cells.str.strip().str.contains(re.escape(sep)).all():
            return sep
    return None


def _is_index_like(col: pd.Series) -> bool:
    """Consecutive integers (0, 1, 2, ... or years): a row index, not a series to forecast."""
    try:
        v = pd.to_numeric(col.str.strip(), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        return False
    return len(v) > 1 and bool(np.all(np.diff(v) == 1))


def _parse_times(col: pd.Series) -> np.ndarray:
    """Numbers stay numbers (years, steps), dates become datetime64, anything else text."""
    numbers = pd.to_numeric(col.str.strip(), errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy()
    dates = pd.to_datetime(col, errors="coerce", format="mixed")
    return dates.to_numpy() if dates.notna().all() else col.to_numpy()


def _find_time_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    """The first non-numeric column that parses completely as dates."""
    for name in frame.columns:
        if name in exclude or _numeric_share(frame[name]) > 0.5:
            continue
        try:
            parsed = pd.to_datetime(frame[name], errors="coerce", format="mixed")
        except (ValueError, TypeError):
            continue
        if parsed.notna().all():
            return name
    return None


def _fill_missing(values: np.ndarray, name: str, fill: str | None, first_line: int,
                  notes: list[str]) -> tuple[np.ndarray, int]:
    """Returns (values, start): start is how many missing values were trimmed at the start."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values, 0
    if fill is None:
        where = int(np.argmax(bad)) + first_line
        raise DataError(f"column {name!r} has {int(bad.sum())} missing or infinite values "
                        f"(first at line {where}); fill them with --fill interpolate")
    if bad.all():
        raise DataError(f"column {name!r} has no finite values")
    good = np.flatnonzero(~bad)
    start, end = good[0], good[-1] + 1
    if start:
        notes.append(f"trimmed {start} missing values at the start")
    if end < len(values):
        notes.append(f"trimmed {len(values) - end} missing values at the end")
    values = values[start:end].copy()
    bad = ~np.isfinite(values)
    if bad.any():
        idx = np.arange(len(values))
        values[bad] = np.interp(idx[bad], idx[~bad], values[~bad])
        notes.append(f"filled {int(bad.sum())} missing values by interpolation")
    return values, int(start)


def _check_length(n: int, patch_size: int) -> None:
    if n < patch_size:
        raise DataError(f"only {n} values; the model needs at least {patch_size} (one patch)")


def load_series_csv(path_or_buffer, column: str | None = None, time_column: str | None = None,
                    fill: str | None = None, max_bytes: int = 10_000_000,
                    patch_size: int = 32) -> UserSeries:
    """Read one numeric column of a CSV file (a path, or a file-like object from an upload).

    The delimiter (',', ';', tab, '|') is sniffed, a missing header row is detected, decimal
    commas are read. column picks the series when there are several numeric columns;
    time_column names the time axis (otherwise a column of dates is used if there is one).
    fill="interpolate" trims missing values at the ends and interpolates the ones inside;
    without it any missing or infinite value is an error.
    """
    if fill not in FILLS:
        raise DataError(f"fill must be one of {', '.join(map(str, FILLS))}, got {fill!r}")
    notes: list[str] = []
    text = _read_text(path_or_buffer, max_bytes)
    frame = _parse_table(text, notes)
    header_lines = 0 if "no header row" in " ".join(notes) else 1
    columns = list(frame.columns)
    for wanted, what in ((column, "column"), (time_column, "time column")):
        if wanted is not None and wanted not in columns:
            raise DataError(f"unknown {what} {wanted!r}; the file has: {', '.join(columns)}")
    if time_column is None:
        time_column = _find_time_column(frame, {column} if column else set())
        if time_column is not None:
            notes.append(f"used {time_column!r} as the time column")
    candidates = [c for c in columns if c != time_column and _numeric_share(frame[c]) >= 0.8]
    index_like = [c for c in candidates if _is_index_like(frame[c])]
    if column is None and index_like and len(candidates) > len(index_like):
        candidates = [c for c in candidates if c not in index_like]
        if time_column is None and len(index_like) == 1:   # e.g. a year column
            time_column = index_like[0]
            notes.append(f"used {time_column!r} as the time column")
        else:
            notes.append(f"ignored the index-like column(s) {', '.join(map(repr, index_like))}")
    if column is None:
        if not candidates:
            sep = _wrong_delimiter_hint(frame)
            if sep is not None:
                raise DataError(f"the file was read as one column but its lines contain {sep!r}: "
                                f"is it {sep!r}-separated? Save it with one delimiter throughout")
            raise DataError(f"no numeric column in the file (columns: {', '.join(columns)})")
        if len(candidates) > 1:
            raise DataError(f"several numeric columns ({', '.join(candidates)}); "
                            f"choose one with --column")
        column = candidates[0]
    values = _to_float(frame[column], column, header_lines)
    values, start = _fill_missing(values, column, fill, 1 + header_lines, notes)
    _check_length(len(values), patch_size)
    times = None
    if time_column is not None:
        times = _parse_times(frame[time_column])[start:start + len(values)]
    return UserSeries(values, column, times, time_column, notes)


def parse_pasted_values(text: str, fill: str | None = None, patch_size: int = 32) -> UserSeries:
    """Numbers pasted as text, separated by commas, semicolons, spaces or new lines.

    Commas separate values, so write decimals with a point. Missing markers (NaN, NA, empty
    between separators is skipped) follow the same fill rules as load_series_csv.
    """
    if fill not in FILLS:
        raise DataError(f"fill must be one of {', '.join(map(str, FILLS))}, got {fill!r}")
    tokens = [t for t in re.split(r"[,;\s]+", text or "") if t]
    if not tokens:
        raise DataError("nothing to read: paste numbers separated by commas, spaces or new lines")
    values = np.empty(len(tokens))
    for i, tok in enumerate(tokens):
        if tok.lower() in _MISSING:
            values[i] = np.nan
        elif _is_number(tok):
            values[i] = float(tok)
        else:
            raise DataError(f"{tok[:30]!r} (value {i + 1}) is not a number")
    notes: list[str] = []
    bad = ~np.isfinite(values)
    if bad.any() and fill is None:
        raise DataError(f"{int(bad.sum())} missing or infinite values (first is value "
                        f"{int(np.argmax(bad)) + 1}); fill them with --fill interpolate")
    values, _ = _fill_missing(values, "pasted", fill, 1, notes)
    _check_length(len(values), patch_size)
    return UserSeries(values, "pasted", notes=notes)


# ---------------------------------------------------------------- the shipped examples

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

@dataclass(frozen=True)
class Example:
    file: str
    period: int      # the season the series is known to have (monthly: 12; the sunspot cycle: 11)


EXAMPLES = {
    "CO₂ at Mauna Loa (monthly)": Example("co2_mauna_loa_monthly.csv", 12),
    "El Niño sea temperature (monthly)": Example("elnino_sst_monthly.csv", 12),
    "Sunspots (yearly)": Example("sunspots_yearly.csv", 11),
}


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise DataError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    return EXAMPLES_DIR / EXAMPLES[name].file


def table_columns(source, max_bytes: int = 10_000_000) -> tuple[list[str], pd.DataFrame]:
    """The column names and the first rows of a CSV (a path or a file-like object), as text.

    Raises userdata.DataError with the same one-line messages as load_series_csv.
    """
    frame = _parse_table(_read_text(source, max_bytes), [])
    return list(frame.columns), frame.head(8)


# ---------------------------------------------------------------- time axis

def future_times(times, n: int):
    """n time stamps after the last of `times`, continuing its spacing; None when there is no
    usable time axis (no times, or text that is neither dates nor numbers).

    Dates: a regular frequency (pd.infer_freq: monthly, yearly, daily, ...) is continued as such;
    month starts with gaps keep the usual month step; otherwise the median spacing. Numbers: the
    median spacing (integers stay integers).
    """
    if times is None or n < 1 or len(times) < 2:
        return None
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        idx = pd.DatetimeIndex(times)
        tail = idx[-min(len(idx), 60):]
        freq = None
        if len(tail) >= 3:
            try:
                with warnings.catch_warnings():   # pandas 3 warns that this becomes an offset
                    warnings.simplefilter("ignore")
                    freq = pd.infer_freq(tail)
            except (TypeError, ValueError):
                freq = None
        if freq is not None:
            return pd.date_range(idx[-1], periods=n + 1, freq=freq)[1:].to_numpy()
        if (tail.day == tail[0].day).all():     # monthly-like, with gaps
            months = np.diff(tail.year * 12 + tail.month)
            step = int(pd.Series(months).mode().iloc[0]) if len(months) else 0
            if step > 0:
                return np.array([idx[-1] + pd.DateOffset(months=step * k) for k in range(1, n + 1)],
                                dtype="datetime64[ns]")
        step = pd.Series(np.diff(idx.asi8)).median()
        return (idx[-1] + pd.to_timedelta(np.arange(1, n + 1) * step, unit="ns")).to_numpy()
    if np.issubdtype(times.dtype, np.number):
        step = float(np.median(np.diff(times.astype(float))))
        if step <= 0 or not np.isfinite(step):
            return None
        future = times[-1] + step * np.arange(1, n + 1)
        if np.issubdtype(times.dtype, np.integer) and float(step).is_integer():
            return future.astype(np.int64)
        return future
    return None


def usable_times(times) -> bool:
    """Dates or numbers: something an x axis and future_times can use."""
    if times is None:
        return False
    times = np.asarray(times)
    return np.issubdtype(times.dtype, np.datetime64) or np.issubdtype(times.dtype, np.number)
