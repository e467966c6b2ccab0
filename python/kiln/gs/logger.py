"""onnx_graphsurgeon's ``G_LOGGER`` on Python's logging: scripts that set ``G_LOGGER.severity`` or log through
it keep working; the messages go to the standard logger "kiln.gs" (where kiln.gs logs too), so applications
configure them the usual way. Severities keep GraphSurgeon's numbers (INFO = 20, as logging's INFO); its
ULTRA_VERBOSE and VERBOSE (below DEBUG) map onto logging levels 1 and 5.
"""

import contextlib
import enum
import logging

from .errors import OnnxGraphSurgeonException

_log = logging.getLogger("kiln.gs")


class LogMode(enum.IntEnum):
    EACH = 0  # every time
    ONCE = 1  # once per message


class Logger:
    ULTRA_VERBOSE = -10
    VERBOSE = 0
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50

    def __init__(self):
        self._once = set()

    @property
    def severity(self):
        """The least severe message shown: the "kiln.gs" logger's effective level, in GraphSurgeon's scale."""
        level = _log.getEffectiveLevel()
        if level >= self.DEBUG:
            return level
        return self.ULTRA_VERBOSE if level <= 1 else self.VERBOSE

    @severity.setter
    def severity(self, value):
        _log.setLevel(self._logging_level(value))

    @staticmethod
    def _logging_level(severity):
        # logging treats level 0 as "unset" (inherit), so GraphSurgeon's levels below DEBUG move into 1..9.
        if severity >= Logger.DEBUG:
            return severity
        return 1 if severity <= Logger.ULTRA_VERBOSE else 5

    def log(self, message, severity, mode=LogMode.EACH, stack_depth=2):
        if callable(message):
            if not _log.isEnabledFor(self._logging_level(severity)):
                return
            message = message()
        if mode == LogMode.ONCE:
            if message in self._once:
                return
            self._once.add(message)
        _log.log(self._logging_level(severity), "%s", message, stacklevel=stack_depth)

    def ultra_verbose(self, message, mode=LogMode.EACH):
        self.log(message, self.ULTRA_VERBOSE, mode, stack_depth=3)

    def verbose(self, message, mode=LogMode.EACH):
        self.log(message, self.VERBOSE, mode, stack_depth=3)

    def debug(self, message, mode=LogMode.EACH):
        self.log(message, self.DEBUG, mode, stack_depth=3)

    def info(self, message, mode=LogMode.EACH):
        self.log(message, self.INFO, mode, stack_depth=3)

    def warning(self, message, mode=LogMode.EACH):
        self.log(message, self.WARNING, mode, stack_depth=3)

    def error(self, message, mode=LogMode.EACH):
        self.log(message, self.ERROR, mode, stack_depth=3)

    def critical(self, message):
        """Logs, then raises OnnxGraphSurgeonException (as GraphSurgeon's does)."""
        self.log(message, self.CRITICAL, stack_depth=3)
        raise OnnxGraphSurgeonException(message) from None

    @contextlib.contextmanager
    def indent(self, level=1):
        yield  # logging has no indentation; kept so `with G_LOGGER.indent():` works

    @contextlib.contextmanager
    def suppress(self, severity=CRITICAL):
        """Only messages at or above ``severity`` inside the block."""
        old = _log.level
        _log.setLevel(self._logging_level(severity))
        try:
            yield
        finally:
            _log.setLevel(old)


G_LOGGER = Logger()
