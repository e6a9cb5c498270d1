"""How every CSV and JSON file the app writes is encoded: UTF-8 with undecodable name bytes kept as they were.

File names are arbitrary bytes on POSIX: Python hands names that are not UTF-8 over as lone surrogates
("surrogateescape"), which the CSV files store back as the original bytes (so ``csv.reader`` with
``errors="surrogateescape"`` gives the same path back) and the JSON files store as ``\\udcXX`` escapes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

ENCODING, ERRORS = "utf-8", "surrogateescape"


def csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def json_text(obj: object, indent: int | None = None) -> str:
    """JSON that keeps readable non-ASCII names but escapes undecodable bytes, so the file is valid UTF-8."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    # Lone surrogates can only sit inside JSON strings, where "\udcXX" is a valid escape for them.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def read_rows(path: Path) -> list[list[str]]:
    """labels.csv's rows; a row torn by a kill (even inside a quoted name with a newline) ends the list."""
    rows: list[list[str]] = []
    with open(path, encoding=ENCODING, errors=ERRORS, newline="") as f:
        reader = csv.reader(f)
        try:
            for r in reader:
                rows.append(r)
        except csv.Error:
            pass
    return rows
