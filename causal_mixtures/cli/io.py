"""Reading and writing tables (CSV / TSV / Parquet by extension) and output-path checks.

The command line never overwrites its input: :func:`check_out_path` refuses an output that is
the input file (or a link to it) and an output folder that is missing or read-only, before any
work is done; :func:`write_table` writes through a temporary file in the output folder and
:func:`os.replace`, so a failed write leaves any previous file intact.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from causal_mixtures.cli.errors import CLIError, one_line

__all__ = ["TABLE_SUFFIXES", "check_out_path", "read_table", "write_table"]

_CSV_SUFFIXES = (".csv", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES
_SEP_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def _default_sep(suffix: str) -> str:
    return "\t" if suffix == ".tsv" else ","


def _sep_text(sep: str) -> str:
    return "'\\t'" if sep == "\t" else repr(sep)


def read_table(path: Path, sep: str | None = None, nrows: int | None = None) -> Any:
    """Read a table; the format follows the extension.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` file.
    sep : str, optional
        Field separator of a text table; default comma for ``.csv`` and tab for ``.tsv``.
        When it is left to the default and the file reads as a single column whose name
        holds another common separator, the read is refused with a hint to pass ``--sep``.
    nrows : int, optional
        Read only the first ``nrows`` rows (the checks of a table that is streamed).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    CLIError
        On an unknown extension, a missing, empty or unreadable file, or a wrong separator.
    """
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CLIError(
            f"cannot tell the format of {str(path)!r} from its extension {suffix or '(none)'!r}; "
            f"use .csv or .tsv (text) or .parquet / .pq"
        )
    if not path.exists():
        raise CLIError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise CLIError(f"not a file: {str(path)!r}")
    if suffix in _PARQUET_SUFFIXES:
        if sep is not None:
            raise CLIError(f"--sep applies to .csv / .tsv tables, not to {str(path)!r}")
        try:
            if nrows is None:
                return pd.read_parquet(path)
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            first = next(pf.iter_batches(batch_size=nrows), None)
            return first.to_pandas() if first is not None else pf.schema_arrow.empty_table().to_pandas()
        except (ValueError, OSError) as exc:
            raise CLIError(f"cannot read {str(path)!r} as Parquet: {one_line(exc)}") from None
    explicit = sep is not None
    used = sep if sep is not None else _default_sep(suffix)
    try:
        frame = pd.read_csv(path, sep=used, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{str(path)!r} is empty: no header row, no data") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CLIError(
            f"cannot read {str(path)!r} as {_SEP_NAMES.get(used, repr(used))}-separated text: "
            f"{one_line(exc)}"
        ) from None
    if not explicit and frame.shape[1] == 1:
        header = str(frame.columns[0])
        for other in _SEP_NAMES:
            if other != used and other in header:
                raise CLIError(
                    f"{str(path)!r} reads as one column {header!r} with the default "
                    f"{_SEP_NAMES[used]} separator; it looks {_SEP_NAMES[other]}-separated: "
                    f"pass --sep {_sep_text(other)}"
                )
    return frame


def check_out_path(path: Path, input_path: Path | None = None) -> None:
    """Check, before any work, that a table can be written to ``path``.

    Parameters
    ----------
    path : Path
        The output table; its extension gives the format.
    input_path : Path, optional
        The input table, which ``path`` must not be (nor link to).

    Raises
    ------
    CLIError
        On an unknown extension, an output that is the input, a directory, or an output
        folder that does not exist or is not writable.
    """
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CLIError(
            f"cannot tell the output format of {str(path)!r} from its extension "
            f"{suffix or '(none)'!r}; use .csv, .tsv, .parquet or .pq"
        )
    if input_path is not None and _same_file(path, input_path):
        how = "a link to" if path.is_symlink() else "the same file as"
        raise CLIError(
            f"--out {str(path)!r} is {how} the input table {str(input_path)!r}; refusing to "
            "overwrite the input: choose another output path"
        )
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise CLIError(f"--out {str(path)!r} is a directory; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise CLIError(f"the output folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"the output folder {str(parent)!r} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:  # one of them does not exist
        return False


def write_table(frame: Any, path: Path) -> None:
    """Write ``frame`` (without its index) to ``path``, atomically.

    The table goes to a temporary file in the folder of ``path`` (of its target, if ``path`` is
    a symbolic link, which keeps pointing at the new table) and then replaces it with
    :func:`os.replace`. A new file gets the permissions a plain write would give it; a
    replaced one keeps its mode.

    Parameters
    ----------
    frame : pandas.DataFrame
    path : Path
        A ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` path (checked by :func:`check_out_path`).
    """
    suffix = path.suffix.lower()
    target = Path(os.path.realpath(path))
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if suffix in _PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, sep=_default_sep(suffix), index=False)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
