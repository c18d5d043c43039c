"""Where the experiment and A/B commands write: checked before any work, so that a bad ``--output``
fails in one line at once, not in a traceback after the data were loaded and the models fitted.

A missing folder is created, as ``recsys generate`` creates the folder of its output.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputError(ValueError):
    """An output location that cannot be written; the message names it and why."""


def prepare_output_file(path: Path) -> Path:
    """Make ``path``'s folder, or raise OutputError when ``path`` cannot be written as a file."""
    if path.is_dir():
        raise OutputError(f"--output {path} is a folder; give a file name")
    _make_folder(path.parent, path)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"--output {path}: not writable")
    return path


def prepare_output_folder(path: Path) -> Path:
    """Make the folder ``path``, or raise OutputError when it cannot be one."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"--output {path} is a file; give a folder (it is made if missing)")
    _make_folder(path, path)
    if not os.access(path, os.W_OK):
        raise OutputError(f"--output {path}: not writable")
    return path


def _make_folder(folder: Path, output: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder of the path should be, or no permission
        raise OutputError(f"--output {output}: cannot make the folder {folder} ({exc.strerror or exc})") from None
