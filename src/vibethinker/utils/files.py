"""Atomic file and folder writes, and the one JSONL reader.

Writes go to a temp file (or folder) in the destination's folder, then ``os.replace``: same file system, so the
rename is atomic and a crash leaves the old content (or nothing), never a half-written file. Kept free of heavy
imports: records, reports and run logs all build on it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def publish_temp_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a ``mkstemp`` file (created 0600) the mode a plain ``open`` would, then rename it into place."""
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, path)


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """A handle on a temp file beside ``path`` (``"wb"``, or ``"w"`` for UTF-8 text), renamed onto ``path`` when the
    block ends cleanly and removed when it raises, so writers can stream without building the content in memory."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        publish_temp_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    path = Path(path)
    with atomic_file(path, "wb") as handle:
        handle.write(payload)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temp folder beside ``path`` to fill; when the block ends cleanly it replaces ``path`` (see
    :func:`replace_dir`), when it raises it is removed and ``path`` is left as it was.

    For outputs made of many files (checkpoints): readers see the previous folder or the finished one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst``; an existing ``dst`` is renamed away first and removed only afterwards."""
    # os.replace cannot overwrite a non-empty folder, and deleting dst first would leave a window with neither.
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class JsonlError(ValueError):
    """A line of a JSONL file that is not valid JSON; the message names the file and the line."""

    def __init__(self, path: str | os.PathLike, line: int, reason: str, column: int):
        self.path, self.line, self.reason, self.column = str(path), line, reason, column
        super().__init__(f"{path}:{line}: not valid JSON: {reason} at column {column}")


def read_jsonl(path: str | os.PathLike, skip_torn_lines: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) of each non-blank line of a JSONL file, read lazily; a line that is not JSON
    raises :class:`JsonlError`.

    ``skip_torn_lines`` is for append-only logs: a crash mid-append leaves a torn last line, and the next append
    after a resume glues onto it, so the torn text can end up mid-file; such lines are dropped instead. Files
    written atomically should be read strictly (the default), where a bad line means real corruption.
    """
    # Iterating the handle splits on newlines only; str.splitlines would also split inside strings holding U+2028
    # or U+0085, which json.dumps(ensure_ascii=False) writes unescaped.
    with open(path, encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                if skip_torn_lines:
                    continue
                raise JsonlError(path, line_no, exc.msg, exc.colno) from None
            yield line_no, value


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
