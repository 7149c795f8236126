"""The shared loop of the converter scripts: convert each given file, report, and set the exit status."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import ModelFileError


def run_conversions(jobs: Iterable[tuple[Path | None, Callable[[Path], Path]]]) -> int:
    """Run `convert(source)` for every job whose source was given; print `source -> written` or the
    error (which names the file). Returns 1 if any failed, so one bad file does not hide the others."""
    failed = 0
    for source, convert in jobs:
        if source is None:
            continue
        try:
            written = convert(source)
        except ModelFileError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        print(f"{source} -> {written}")
    return 1 if failed else 0
