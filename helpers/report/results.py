"""Results read and written one way: every table a notebook leaves for later ones is a CSV in ``results_dir``.

* The timing tables, one per experiment: one row per timed run, appended to ``<results_dir>/<experiment>.csv``
  with ``append_rows``, read back with ``read_results`` and condensed with ``summarize`` (``read_summary``
  does both).
* Any other table a chapter computes for a later one (the compression chapter's quality and trade-off
  tables, the at-scale chapter's writes): ``write_table`` and ``read_table``.
* The facts of the run that later notebooks need (which images were measured, the raw bytes of one image):
  ``record_facts`` and ``read_facts``, a small table of its own.

Every write goes through a temporary name (``helpers.core.files.write_atomically``), so a crash leaves the
previous complete table, never a half-written row. ``environment.json`` (``helpers.report.environment``) is
the record of the machine and software, not a place for results.

Columns of a timing table (``COLUMNS``):

* ``experiment``: the table's name (``single_image``, ``many_images``, ...);
* ``method``: the storage method (``disk``, ``lmdb``, ``hdf5``, and the floor ``npy``);
* ``operation``: ``store_single``, ``read_single``, ``store_many`` or ``read_many``; and for the access
  patterns of a training loop ``read_random`` (``n_images`` single images at random positions of the
  batch, one ``read_one`` each) and ``read_epoch`` (one shuffled epoch of ``n_images`` in mini-batches);
* ``n_images``: images written or read by the operation; ``repeat``: 0, 1, ... the timed run;
* ``cache``: ``warm`` or ``cold`` for reads, empty for stores;
* ``durable``: whether the store flushed its writes to stable storage (reads record the setting of the
  store they read from);
* ``seconds``: the run's wall-clock time;
* ``bytes_apparent``, ``bytes_allocated``, ``files``: the store's disk usage after the store run
  (``helpers.core.measure.disk_usage``), on store rows; NaN on read rows;
* ``dataset``: which images were used (``cifar10``, ``synthetic``, ...);
* ``workers``: loader worker processes that read (``helpers.loader.batches``); 0 means the calling process
  alone, as for every operation but ``read_epoch``. Rows written without the column get 0.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.files import remove, write_atomically
from helpers.stores import FLOOR  # the method every other one is divided by in ratio_to_floor

COLUMNS = [
    "experiment", "method", "operation", "n_images", "repeat", "cache", "durable", "seconds",
    "bytes_apparent", "bytes_allocated", "files", "dataset",
    "workers",
]
OPERATIONS = ("store_single", "read_single", "store_many", "read_many", "read_random", "read_epoch")
STORE_OPERATIONS = ("store_single", "store_many")
CACHES = ("warm", "cold")

TEXT_COLUMNS = ("experiment", "method", "operation", "cache", "dataset")
INTEGER_COLUMNS = ("n_images", "repeat", "workers")
#: Columns a table may leave out, and the value they then take.
DEFAULTS = {"workers": 0}
#: float64 because read rows have none (NaN).
USAGE_COLUMNS = ("bytes_apparent", "bytes_allocated", "files")
GROUP_COLUMNS = ["experiment", "method", "operation", "n_images", "cache", "durable", "workers"]
SUMMARY_COLUMNS = GROUP_COLUMNS + [
    "median", "min", "max", "q1", "q3", "iqr", "runs", "per_image", "bytes_apparent", "bytes_allocated",
    "ratio_to_floor", "dataset",
]

#: The table of the run's facts (``record_facts``).
FACTS = "facts"
#: The notebook that writes each table, named in the error when a table is missing.
WRITERS = {
    FACTS: "notebooks/00-setup.ipynb",
    "single_image": "notebooks/01-single-image.ipynb",
    "many_images": "notebooks/02-many-images.ipynb",
    "durability": "notebooks/02-many-images.ipynb",
    "access_patterns": "notebooks/04-access-patterns.ipynb",
    "large_images": "notebooks/05-large-images.ipynb",
    "compression": "notebooks/06-compression.ipynb",
    "compression_quality": "notebooks/06-compression.ipynb",
    "compression_trade_off": "notebooks/06-compression.ipynb",
    "at_scale_writes": "notebooks/07-at-scale.ipynb",
    "at_scale_conversions": "notebooks/07-at-scale.ipynb",
}


def results_path(results_dir: str | os.PathLike[str], experiment: str) -> Path:
    if not isinstance(experiment, str) or not experiment or "/" in experiment or experiment.startswith("."):
        raise ValueError(f"experiment must be a plain name like 'many_images', got {experiment!r}")
    return Path(results_dir) / f"{experiment}.csv"


def write_table(results_dir: str | os.PathLike[str], name: str, frame: pd.DataFrame) -> Path:
    """``frame`` as ``results_dir/<name>.csv``, replacing the table atomically; the file's path."""
    path = results_path(results_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    write_atomically(path, buffer.getvalue().encode(), durable=True)
    return path


def read_table(results_dir: str | os.PathLike[str], name: str, *, text: Sequence[str] = ()) -> pd.DataFrame:
    """The table ``write_table`` wrote; FileNotFoundError naming the notebook that writes it.

    The ``text`` columns are read as strings, an empty one staying "" (in the others an empty cell is NaN).
    """
    path = results_path(results_dir, name)
    if not path.exists():
        writer = WRITERS.get(name, "the notebook that writes it")
        raise FileNotFoundError(f"{path} does not exist; run {writer} first (with the same results_dir)")
    columns = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(
        path,
        dtype={column: str for column in text},
        keep_default_na=False,
        na_values={column: [""] for column in columns if column not in text},
    )


def record_facts(results_dir: str | os.PathLike[str], **facts: object) -> Path:
    """Add ``facts`` (JSON values: which images were measured, the bytes of one image...) to the run's facts,
    replacing those of the same name."""
    try:
        known = read_facts(results_dir)
    except FileNotFoundError:
        known = {}
    known.update(facts)
    frame = pd.DataFrame({"fact": list(known), "value": [json.dumps(value) for value in known.values()]})
    return write_table(results_dir, FACTS, frame)


def read_facts(results_dir: str | os.PathLike[str]) -> dict:
    """The facts ``record_facts`` recorded, by name; FileNotFoundError when 00-setup has not run."""
    table = read_table(results_dir, FACTS, text=("fact", "value"))
    return {fact: json.loads(value) for fact, value in zip(table["fact"], table["value"])}


def empty_table() -> pd.DataFrame:
    return with_dtypes(pd.DataFrame({column: [] for column in COLUMNS}))


def with_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with its columns in order and their types fixed: text, int64, bool and float64."""
    frame = frame.assign(**{column: frame[column].fillna(value) if column in frame else value
                            for column, value in DEFAULTS.items()})[COLUMNS].copy()
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype(np.int64)
    frame["durable"] = frame["durable"].map(as_bool).astype(bool)
    for column in ("seconds", *USAGE_COLUMNS):
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype(np.float64)
    return frame.reset_index(drop=True)


def as_bool(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"durable must be True or False, got {value!r}")


def check_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as a valid results table, or a ValueError naming the first problem."""
    missing = [column for column in COLUMNS if column not in frame.columns and column not in DEFAULTS]
    extra = [column for column in frame.columns if column not in COLUMNS]
    if missing or extra:
        raise ValueError(f"results rows must have exactly the columns {COLUMNS}; "
                         f"missing {missing}, unexpected {extra}")
    frame = with_dtypes(frame)
    bad_operation = sorted(set(frame["operation"]) - set(OPERATIONS))
    if bad_operation:
        raise ValueError(f"unknown operation(s) {bad_operation}; expected one of {OPERATIONS}")
    is_store = frame["operation"].isin(STORE_OPERATIONS)
    bad_cache = frame.loc[~is_store & ~frame["cache"].isin(CACHES), "cache"]
    if len(bad_cache):
        raise ValueError(f"read rows need cache 'warm' or 'cold', got {bad_cache.iloc[0]!r}")
    if (frame.loc[is_store, "cache"] != "").any():
        raise ValueError("store rows must have an empty cache column")
    if (frame["n_images"] < 1).any() or (frame["repeat"] < 0).any():
        raise ValueError("n_images must be at least 1 and repeat at least 0")
    if not np.isfinite(frame["seconds"]).all() or (frame["seconds"] < 0).any():
        raise ValueError("seconds must be finite and not negative")
    return frame


def append_rows(
    results_dir: str | os.PathLike[str], experiment: str, rows: pd.DataFrame | list[dict]
) -> Path:
    """Append ``rows`` to ``results_dir/<experiment>.csv`` atomically; the file's path.

    The ``experiment`` column is set to ``experiment``, whatever the rows held.
    """
    path = results_path(results_dir, experiment)
    new = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    if new.empty and not len(new.columns):
        new = empty_table()
    new["experiment"] = experiment
    new = check_rows(new)
    if path.exists():
        new = pd.concat([read_results(results_dir, experiment), new], ignore_index=True)
    return write_table(results_dir, experiment, new)


def reset(results_dir: str | os.PathLike[str], name: str) -> None:
    """Remove a table, so a notebook run starts from no rows."""
    remove(results_path(results_dir, name))


def read_results(results_dir: str | os.PathLike[str], experiment: str) -> pd.DataFrame:
    """The experiment's table with its column types; FileNotFoundError naming the notebook that writes it."""
    frame = read_table(results_dir, experiment, text=TEXT_COLUMNS + ("durable",))
    try:
        return check_rows(frame)
    except (ValueError, KeyError) as error:
        path = results_path(results_dir, experiment)
        raise ValueError(f"{path}: not a results table of this library ({error})") from None


def read_summary(results_dir: str | os.PathLike[str], experiment: str, *, required: bool = True) -> pd.DataFrame | None:
    """``summarize`` of the experiment's table; with ``required=False``, None when its notebook did not run."""
    if not required and not results_path(results_dir, experiment).exists():
        return None
    return summarize(read_results(results_dir, experiment))


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment, method, operation, n_images, cache, durability and workers: the runs' statistics.

    ``median``, ``min``, ``max``, ``q1``, ``q3`` (linear interpolation), ``iqr`` and ``runs`` of seconds;
    ``per_image`` = median / n_images; ``bytes_apparent`` and ``bytes_allocated`` (medians, NaN for reads);
    ``ratio_to_floor`` = median / the median of the ``npy`` floor for the same operation, n_images, cache,
    durability and workers (NaN where the floor was not measured); ``dataset`` (the values seen, joined by
    ``+``).
    """
    if df.empty:
        return pd.DataFrame({column: [] for column in SUMMARY_COLUMNS})
    grouped = df.groupby(GROUP_COLUMNS, sort=True, dropna=False)
    seconds = grouped["seconds"]
    summary = pd.DataFrame({
        "median": seconds.median(),
        "min": seconds.min(),
        "max": seconds.max(),
        "q1": seconds.quantile(0.25),
        "q3": seconds.quantile(0.75),
        "runs": seconds.count().astype(np.int64),
        "bytes_apparent": grouped["bytes_apparent"].median(),
        "bytes_allocated": grouped["bytes_allocated"].median(),
        "dataset": grouped["dataset"].agg(lambda values: "+".join(sorted(set(values)))),
    }).reset_index()
    summary["iqr"] = summary["q3"] - summary["q1"]
    summary["per_image"] = summary["median"] / summary["n_images"]
    floor_keys = ["operation", "n_images", "cache", "durable", "workers"]
    floors = (summary.loc[summary["method"] == FLOOR, floor_keys + ["experiment", "median"]]
              .rename(columns={"median": "floor_median"}))
    summary = summary.merge(floors, on=["experiment", *floor_keys], how="left")
    summary["ratio_to_floor"] = summary["median"] / summary["floor_median"]
    return summary[SUMMARY_COLUMNS]
