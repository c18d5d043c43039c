"""Business rules applied to ranked lists at serving time.

A :class:`RuleSet` filters candidates (exclude what the customer already bought, include/exclude
lists, allowed/blocked categories) and caps how many items of one category a list may hold. Rules
never reorder: what survives keeps the model's order. When the rules leave fewer than ``k`` items the
caller fills from its fallback chain, passing each fallback list through the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

RULE_NAMES = ("exclude_purchased", "include_items", "exclude_items", "categories", "exclude_categories",
              "max_per_category")


@dataclass(frozen=True)
class RuleSet:
    """``None``/empty means "no such rule"; ``include_items`` and ``categories`` are allow-lists."""

    exclude_purchased: bool = False
    include_items: frozenset[str] = field(default_factory=frozenset)
    exclude_items: frozenset[str] = field(default_factory=frozenset)
    categories: frozenset[str] = field(default_factory=frozenset)
    exclude_categories: frozenset[str] = field(default_factory=frozenset)
    max_per_category: int | None = None

    def __post_init__(self) -> None:
        if self.max_per_category is not None and self.max_per_category < 1:
            raise ValueError(f"max_per_category must be >= 1, got {self.max_per_category}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "rules") -> RuleSet:
        unknown = set(values) - set(RULE_NAMES)
        if unknown:
            raise ValueError(f"{where}: unknown rule(s) {sorted(unknown)}; valid rules: {', '.join(RULE_NAMES)}")
        # Checked by type, not coerced: "mugs" as a category list would match by substring ("mug", "s"),
        # and the string "false" would switch exclude_purchased on.
        converted: dict[str, Any] = {}
        for name, value in values.items():
            if name == "exclude_purchased":
                if not isinstance(value, bool):
                    raise ValueError(f"{where}.{name}: expected true or false, got {value!r}")
            elif name == "max_per_category":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"{where}.{name}: expected a whole number >= 1, got {value!r}")
            elif isinstance(value, list | tuple | set | frozenset):
                value = frozenset(map(str, value))
            else:
                raise ValueError(f"{where}.{name}: expected a list of ids, got {value!r}")
            converted[name] = value
        return cls(**converted)

    def override(self, **changes: Any) -> RuleSet:
        """This rule set with the given, non-``None`` values replaced (a request refining a placement)."""
        given = {k: (frozenset(v) if isinstance(v, list | tuple | set) else v)
                 for k, v in changes.items() if v is not None}
        return replace(self, **given)

    @property
    def active(self) -> list[str]:
        """Names of the rules that can remove something, in a stable order (reported to clients)."""
        return [f.name for f in fields(self) if getattr(self, f.name) not in (False, None, frozenset())]


class RuleFilter:
    """Applies a :class:`RuleSet` to candidate lists of one request, keeping per-category counts across
    the personal list and every fallback list so that the cap holds for the whole answer."""

    def __init__(self, rules: RuleSet, categories: Sequence[str | None], item_ids: Sequence[str],
                 purchased_rows: Iterable[int] = (), excluded_rows: Iterable[int] = ()) -> None:
        self.rules = rules
        self.categories = categories
        self.item_ids = item_ids
        # items never to answer whatever the rules say (a basket's own items)
        self.purchased = set(int(r) for r in purchased_rows) if rules.exclude_purchased else set()
        self.purchased.update(int(r) for r in excluded_rows)
        self.chosen: set[int] = set()
        self.per_category: dict[str | None, int] = {}

    def admit(self, item_row: int) -> bool:
        """Whether ``item_row`` may join the answer; admitting it counts it against the caps."""
        rules = self.rules
        if item_row in self.chosen or item_row in self.purchased:
            return False
        item_id = self.item_ids[item_row]
        if (rules.include_items and item_id not in rules.include_items) or item_id in rules.exclude_items:
            return False
        category = self.categories[item_row]
        if rules.categories and category not in rules.categories:
            return False
        if category in rules.exclude_categories:
            return False
        # an item without a category is in no category: the cap does not count it (on a catalogue
        # without categories, counting them as one would cap the whole list)
        if category is not None and rules.max_per_category is not None:
            if self.per_category.get(category, 0) >= rules.max_per_category:
                return False
            self.per_category[category] = self.per_category.get(category, 0) + 1
        self.chosen.add(item_row)
        return True
