"""Due dates for created records: relative to the trigger time, in the company's time zone (S5)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAYS = {"monday": MO, "tuesday": TU, "wednesday": WE, "thursday": TH, "friday": FR, "saturday": SA,
             "sunday": SU}
_RELATIVE = re.compile(r"^\s*(\d+)\s*(day|week|month)s?\s*$", re.IGNORECASE)


def parse_relative(text: str) -> relativedelta:
    match = _RELATIVE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a relative date like '1 day', '2 weeks' or '1 month'")
    amount, unit = int(match.group(1)), match.group(2).lower()
    return relativedelta(**{f"{unit}s": amount})  # type: ignore[arg-type]


class DueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    within: str = Field(alias="in")

    @field_validator("within")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_relative(value)
        return value


class DueNext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    next: Weekday


def _due_kind(value: object) -> str:
    if isinstance(value, dict):
        return "weekday" if "next" in value else "relative"
    if isinstance(value, DueIn | DueNext):
        return "relative" if isinstance(value, DueIn) else "weekday"
    return "on_date"


#: {in: "1 day"} | {next: friday} | "2026-12-01" — tagged so an error names only the form that was meant.
DueSpec = Annotated[
    Annotated[DueIn, Tag("relative")] | Annotated[DueNext, Tag("weekday")] | Annotated[date, Tag("on_date")],
    Discriminator(_due_kind),
]


def trigger_date(occurred_at: datetime, timezone: str) -> date:
    return occurred_at.astimezone(ZoneInfo(timezone)).date()


def resolve_due(spec: DueSpec | None, occurred_at: datetime, timezone: str) -> date:
    """None -> the trigger date; {in: '1 day'} -> trigger date + 1 day; {next: friday} -> the next Friday
    strictly after the trigger date; a date stays as it is."""
    start = trigger_date(occurred_at, timezone)
    if spec is None:
        return start
    if isinstance(spec, DueIn):
        return start + parse_relative(spec.within)
    if isinstance(spec, DueNext):
        return start + relativedelta(days=1, weekday=_WEEKDAYS[spec.next](+1))
    return spec
