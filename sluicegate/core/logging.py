"""Structured logs (structlog): a pipeline of plain processors, JSON or console.

Log events carry ids, counts and states only. Payload text is never logged;
identifiers that slip through anyway are masked (logging.mask).
"""

from __future__ import annotations

import logging
import sys

import structlog

from sluicegate.core.config import LoggingConfig
from sluicegate.core.security.masking import MaskingProcessor


def configure_logging(cfg: LoggingConfig) -> None:
    level = getattr(logging, cfg.level)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if cfg.format == "json"
        # Plain tracebacks: rich ones print local variables, which may hold PHI.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if cfg.format == "json" or cfg.mask:
        shared.append(structlog.processors.format_exc_info)  # text, never locals
    if cfg.mask:  # last: it sees the rendered exception text too
        shared.append(MaskingProcessor(cfg.sensitive_keys))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
