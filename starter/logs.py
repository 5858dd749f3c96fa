"""Process logging: readable lines for a terminal, or JSON lines (LOG_FORMAT=json) whose fields carry the ids
operators search by (company_id, automation_id, run_id, step_index, and Temporal's workflow/activity info)."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

from models.settings import get_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | None = None) -> None:
    settings = get_settings()
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                                           rename_fields={"asctime": "time", "levelname": "level"}))
        # Temporal's loggers also append their context to the message; JSON has it as fields already.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=(level or settings.log_level).upper(), handlers=[handler], force=True)
