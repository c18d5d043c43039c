"""Query parameters of the storefront routes, read by hand.

These routes are called on every page view. FastAPI's per-parameter solving costs more than the
Redis read behind the answer, so ``k`` and the business-rule parameters are parsed here, with the
same 422 body FastAPI gives (``loc``, ``msg``, ``input``, ``type``), and documented in the OpenAPI
schema through :data:`RECOMMENDATION_PARAMETERS` and :data:`K_PARAMETER`.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from pydantic import TypeAdapter, ValidationError
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.datastructures import QueryParams

from recsys.rules import RuleSet
from serving.settings import ServingSettings

_INTEGER = TypeAdapter(int)
_MAX_DIGITS = 9

# pydantic's spellings, which FastAPI's own boolean parameters accept
TRUE, FALSE = {"true", "t", "1", "yes", "y", "on"}, {"false", "f", "0", "no", "n", "off"}
LIST_RULES = ("include_items", "exclude_items", "categories", "exclude_categories")
RULE_PARAMETERS = ("placement", "exclude_purchased", *LIST_RULES, "max_per_category")


def _parameter(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


MAX_ID_LENGTH = 128
CUSTOMER_PARAMETER = {"name": "customer_id", "in": "path", "required": True, "description": "External customer id",
                      "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}}
K_PARAMETER = _parameter("k", "How many items: 1 to max_k (100 unless configured); default default_k (10)",
                         {"type": "integer", "minimum": 1})
STRINGS = {"type": "array", "items": {"type": "string"}}
RECOMMENDATION_PARAMETERS = [
    K_PARAMETER,
    _parameter("placement", "Named rule set from RECSYS_SERVING_PLACEMENTS; the parameters below refine it",
               {"type": "string"}),
    _parameter("exclude_purchased", "Leave out items the customer bought", {"type": "boolean"}),
    _parameter("include_items", "Only these items (repeat the parameter)", STRINGS),
    _parameter("exclude_items", "Never these items", STRINGS),
    _parameter("categories", "Only items of these categories", STRINGS),
    _parameter("exclude_categories", "Never items of these categories", STRINGS),
    _parameter("max_per_category", "At most this many items per category", {"type": "integer", "minimum": 1}),
]


class AnyIdConvertor(PathConvertor):
    """Starlette's ``path``, which is ``.*`` and so never matches a line break: an id holding one (sent
    as %0A) got a bare 404 instead of its route's answer."""

    regex = "[\\s\\S]*"


#: The path convertor of every route taking an external id: ``{customer_id:anyid}``.
register_url_convertor("anyid", AnyIdConvertor())


def invalid(name: str, message: str, value: object, kind: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["query", name], "msg": message, "input": value, "type": kind}])


def path_id(request: Request, name: str) -> str:
    """An id from the path, 1 to :data:`MAX_ID_LENGTH` characters. Routes take ids as ``{name:anyid}``, so
    that an id holding "/" (sent as %2F, which the server decodes before routing) still reaches its route."""
    value = request.path_params[name]
    if not value:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["path", name], "msg": "String should have at least 1 character",
                              "input": value, "type": "string_too_short"}])
    if len(value) > MAX_ID_LENGTH:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["path", name], "msg": f"String should have at most {MAX_ID_LENGTH} characters",
                              "input": value, "type": "string_too_long"}])
    return value


def integer_param(query: QueryParams, name: str) -> int | None:
    """Query parameter ``name`` as an integer >= 1 parsed as FastAPI parses its own (None when absent);
    a 422 naming the parameter otherwise."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():  # the usual case, without pydantic's call
        digits = raw.lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            # int() refuses past 4,300 digits (a 500), and no count here comes near this many
            raise invalid(name, f"Input should have at most {_MAX_DIGITS} digits", raw[:40], "too_long")
        value = int(digits)
    else:
        # Python's int() also reads other scripts' digits and rejects "3.0": pydantic, which FastAPI
        # parses its own parameters with, decides what else is an integer
        try:
            value = _INTEGER.validate_python(raw)
        except ValidationError:
            raise invalid(name, "Input should be a valid integer", raw, "int_parsing") from None
    if value < 1:
        raise invalid(name, "Input should be greater than or equal to 1", raw, "greater_than_equal")
    return value


def k_of(query: QueryParams, settings: ServingSettings) -> int:
    k = integer_param(query, "k")
    if k is None:
        return settings.default_k
    if k > settings.max_k:
        raise invalid("k", f"k must be at most {settings.max_k}", k, "less_than_equal")
    return k


def rules_of(query: QueryParams, settings: ServingSettings) -> RuleSet | None:
    """The request's rules: its placement refined by the rule parameters; ``None`` when it gives none."""
    if not any(name in query for name in RULE_PARAMETERS):
        return None
    placement = query.get("placement")
    try:
        rules = settings.placement_rules(placement)
    except KeyError:
        valid = ", ".join(sorted(settings.placements)) or "none configured"
        raise invalid("placement", f"unknown placement {placement!r}; valid: {valid}", placement,
                      "value_error") from None
    refinements: dict[str, object] = {name: query.getlist(name) or None for name in LIST_RULES}
    raw = query.get("exclude_purchased")
    if raw is not None:
        if raw.lower() not in TRUE | FALSE:
            raise invalid("exclude_purchased", "Input should be a valid boolean", raw, "bool_parsing")
        refinements["exclude_purchased"] = raw.lower() in TRUE
    refinements["max_per_category"] = integer_param(query, "max_per_category")
    return rules.override(**refinements)
