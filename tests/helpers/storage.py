"""
Storage as tests watch it: fsspec's memory filesystem that records the calls reaching it, and a record of the
local files the process opens (through Python's audit hooks), to show that a check touched no store at all.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fsspec.implementations.memory import MemoryFileSystem

#: The audit events that touch local files.
FILE_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})


class RecordingMemoryFileSystem(MemoryFileSystem):
    """
    fsspec's memory filesystem with a store of its own, recording in :attr:`calls` each ``info``, ``ls`` and
    ``_open`` (every read and every existence or size check goes through them).

    :attr:`knows_sizes` ``False`` makes ``info`` leave the size out, as stores that cannot tell it before a read do;
    :attr:`refuse` (an exception) makes every open raise it, as a store refusing its credentials does.
    """

    cachable = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store: dict[str, Any] = {}
        self.pseudo_dirs = [""]
        self.calls: list[tuple[str, str]] = []
        self.knows_sizes = True
        self.refuse: BaseException | None = None

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("info", path))
        details = super().info(path, **kwargs)
        if not self.knows_sizes:
            details = {key: value for key, value in details.items() if key != "size"}
        return details

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        self.calls.append(("ls", path))
        return super().ls(path, detail=detail, **kwargs)

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("open", path))
        if self.refuse is not None:
            raise self.refuse
        return super()._open(path, mode, *args, **kwargs)


class _FileEvents:
    """One audit hook for the whole process (hooks cannot be removed), recording only while asked to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[tuple[str, Any]] | None = None
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        log = self._log
        if log is not None and event in FILE_EVENTS:
            log.append((event, args[0] if args else None))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        with self._lock:
            self._log = log = []
            try:
                yield log
            finally:
                self._log = None


_EVENTS: _FileEvents | None = None


def local_file_events() -> _FileEvents:
    """The process's file-event recorder (installed on first use): ``with local_file_events().recording() as log``."""
    global _EVENTS
    if _EVENTS is None:
        _EVENTS = _FileEvents()
    return _EVENTS
