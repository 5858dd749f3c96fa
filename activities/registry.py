"""The action registry: an action type is a params model plus one function, registered by `@action`.

Every module of the `activities` package (and of `settings.action_modules`) is imported by `discover()`,
so a new action type is one new module: validation, listings and the worker pick it up from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from models.definitions import pydantic_errors
from models.settings import get_settings

if TYPE_CHECKING:
    from activities.context import ActionContext

ActionFunction = Callable[["ActionContext", Any], dict[str, Any]]
#: Extra save-time checks that need the trigger entity, e.g. "the trigger has a person to update".
ParamsCheck = Callable[[Any, str], list[dict[str, str]]]


@dataclass(frozen=True)
class ActionType:
    name: str
    params_model: type[BaseModel]
    execute: ActionFunction
    description: str
    check: ParamsCheck | None = field(default=None)
    #: Calls an outside service. Such actions run as regular activities on a task queue of their family
    #: (`<task_queue>-<family>`), rate-limited there, so a burst never starves record actions, which run as
    #: local activities inside the step's database transaction.
    external: bool = False
    #: The provider's documented limit, enforced by Temporal across all workers of the family's queue.
    max_per_second: float | None = None

    @property
    def family(self) -> str:
        return self.name.split(".")[0]

    def task_queue(self, base: str) -> str | None:
        """The task queue of an external action; None for actions run locally."""
        return f"{base}-{self.family}" if self.external else None

    def schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()


REGISTRY: dict[str, ActionType] = {}


def action(
    name: str, params: type[BaseModel], *, description: str = "", check: ParamsCheck | None = None,
    external: bool = False, max_per_second: float | None = None,
) -> Callable[[ActionFunction], ActionFunction]:
    """Register `fn(ctx, params) -> output` as action type `name` (e.g. 'deal.create').

    `external=True` for actions that call an outside service (see ActionType.external)."""

    def register(fn: ActionFunction) -> ActionFunction:
        if name in REGISTRY and REGISTRY[name].execute is not fn:
            raise RuntimeError(f"action type {name!r} is registered twice")
        REGISTRY[name] = ActionType(name, params, fn, description or (fn.__doc__ or "").strip(), check,
                                    external, max_per_second)
        return fn

    return register


_discovered = False


def discover() -> dict[str, ActionType]:
    """Import every action module once; returns the registry."""
    global _discovered
    if not _discovered:
        import activities

        for module in pkgutil.iter_modules(activities.__path__):
            importlib.import_module(f"activities.{module.name}")
        for extra in get_settings().action_modules:
            importlib.import_module(extra)
        _discovered = True
    return REGISTRY


def external_families() -> dict[str, float | None]:
    """Families of external actions with their rate limit (the strictest of the family's actions)."""
    families: dict[str, float | None] = {}
    for action_type in discover().values():
        if action_type.external:
            limits = [x for x in (families.get(action_type.family), action_type.max_per_second) if x]
            families[action_type.family] = min(limits) if limits else None
    return families


def get_action(name: str) -> ActionType:
    try:
        return discover()[name]
    except KeyError:
        raise KeyError(f"unknown action type {name!r}") from None


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _template_paths(value: Any, path: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    if is_template(value):
        return {path}
    if isinstance(value, dict):
        return set().union(*(_template_paths(v, (*path, k)) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(_template_paths(v, (*path, i)) for i, v in enumerate(value)))
    return set()


def check_params(action_name: str, params: dict[str, Any], trigger_entity: str, path: str) -> list[dict[str, str]]:
    """Save-time check of a step's params. A merge field stands for a value of the right type."""
    from activities.merge import check_template

    try:
        action_type = get_action(action_name)
    except KeyError:
        known = ", ".join(sorted(discover()))
        return [{"path": f"{path}.action", "message": f"unknown action type {action_name!r} (known: {known})"}]
    templated = _template_paths(params)
    errors = []
    for tpath in sorted(templated, key=str):
        value: Any = params
        for part in tpath:
            value = value[part]
        problem = check_template(value, trigger_entity)
        if problem:
            sub = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in tpath)
            errors.append({"path": f"{path}.params{sub}", "message": problem})
    try:
        parsed = action_type.params_model.model_validate(params)
    except ValidationError as err:
        # An error on a value that is a merge field is judged when the run renders it, not now.
        kept = [e for e in err.errors() if tuple(e["loc"]) not in templated and not is_template(e.get("input"))]
        if kept:
            errors += pydantic_errors(kept, f"{path}.params")
        return errors
    if action_type.check:
        errors += [{"path": f"{path}.params{'.' + e['path'] if e['path'] else ''}", "message": e["message"]}
                   for e in action_type.check(parsed, trigger_entity)]
    return errors
