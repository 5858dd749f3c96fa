"""Merge fields: `{{deal.title}}` in action params, rendered with Jinja2's sandbox, strictly.

A missing field is an error, never an empty string. A param that is exactly one `{{ expr }}` keeps the
value's type (`"{{deal.id}}"` renders to the integer 42).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from activities.errors import MergeFieldMissing
from models.fields import relations

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_SINGLE = re.compile(r"^\s*\{\{(.+?)\}\}\s*$", re.DOTALL)

#: Names every template may use besides the trigger entity and its relations.
COMMON_ROOTS = {"record", "event", "owner", "user", "company"}


def roots_for(trigger_entity: str) -> set[str]:
    return {trigger_entity, *relations(trigger_entity), *COMMON_ROOTS}


# Compiling a template costs far more than rendering it, and an automation's templates are the same on every
# run: compile each text once per process.
@lru_cache(maxsize=4096)
def template_roots(text: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_env.parse(text)))


@lru_cache(maxsize=4096)
def _template(text: str) -> Template:
    return _env.from_string(text)


@lru_cache(maxsize=4096)
def _expression(source: str) -> Any:
    return _env.compile_expression(source, undefined_to_none=False)


def check_template(text: str, trigger_entity: str) -> str | None:
    """Save-time check: the template parses and names only records a run of this trigger can have."""
    try:
        roots = template_roots(text)
    except TemplateSyntaxError as err:
        return f"merge field syntax error in {text!r}: {err.message}"
    unknown = sorted(roots - roots_for(trigger_entity))
    if unknown:
        allowed = ", ".join(sorted(roots_for(trigger_entity)))
        names = ", ".join(unknown)
        return f"unknown merge field root {names} in {text!r} (a {trigger_entity} trigger has: {allowed})"
    return None


def render(value: Any, context: dict[str, Any], path: str = "params") -> Any:
    """Render every string leaf of `value`; raises MergeFieldMissing naming the param and the field."""
    if isinstance(value, dict):
        return {k: render(v, context, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value
    try:
        single = _SINGLE.match(value)
        if single and "{{" not in single.group(1):
            result = _expression(single.group(1).strip())(**context)
            if isinstance(result, StrictUndefined):
                str(result)  # raises UndefinedError with the missing name
            return result
        return _template(value).render(**context)
    except UndefinedError as err:
        raise MergeFieldMissing(f"{path}: merge field missing in {value!r}: {err.message}") from None
    except TemplateSyntaxError as err:
        raise MergeFieldMissing(f"{path}: merge field syntax error in {value!r}: {err.message}") from None
