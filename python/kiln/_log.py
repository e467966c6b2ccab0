"""The build log: every line to the logger "kiln"; a one-line progress display on stderr when it is a terminal."""
import logging
import shutil
import sys
from typing import Optional

logger = logging.getLogger("kiln")


class BuildLog:
    """Callable given to the C++ builder (BuildOptions::log); close() clears the progress line."""

    def __init__(self, progress: Optional[bool] = None) -> None:
        self.progress = _stderr_is_tty() if progress is None else progress
        self._drawn = False

    def __call__(self, message: str) -> None:
        logger.info(message)
        if self.progress:
            width = max(20, shutil.get_terminal_size((80, 20)).columns - 1)
            sys.stderr.write("\r\x1b[K" + message[:width])
            sys.stderr.flush()
            self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
