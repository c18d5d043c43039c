"""Business rules on a hand-made catalogue: what each rule removes, order kept, caps across lists."""

from __future__ import annotations

import pytest

from recsys.rules import RuleFilter, RuleSet

ITEMS = ["A", "B", "C", "D", "E", "F"]
CATEGORIES = ["mugs", "mugs", "mugs", "bags", "bags", None]


def admitted(rules: RuleSet, rows, purchased=()):
    rule_filter = RuleFilter(rules, CATEGORIES, ITEMS, purchased)
    return [ITEMS[r] for r in rows if rule_filter.admit(r)]


def test_no_rules_keep_order_and_drop_only_duplicates():
    assert admitted(RuleSet(), [2, 0, 2, 5]) == ["C", "A", "F"]


def test_exclude_purchased_only_when_asked():
    assert admitted(RuleSet(exclude_purchased=True), [0, 1, 2], purchased=[1]) == ["A", "C"]
    assert admitted(RuleSet(), [0, 1, 2], purchased=[1]) == ["A", "B", "C"]


def test_include_and_exclude_lists():
    assert admitted(RuleSet(include_items=frozenset({"B", "D"})), range(6)) == ["B", "D"]
    assert admitted(RuleSet(exclude_items=frozenset({"B", "D"})), range(6)) == ["A", "C", "E", "F"]


def test_categories_allow_and_block():
    assert admitted(RuleSet(categories=frozenset({"bags"})), range(6)) == ["D", "E"]
    assert admitted(RuleSet(exclude_categories=frozenset({"mugs"})), range(6)) == ["D", "E", "F"]


def test_max_per_category_holds_across_lists():
    rule_filter = RuleFilter(RuleSet(max_per_category=2), CATEGORIES, ITEMS)
    personal = [r for r in [0, 1, 2] if rule_filter.admit(r)]
    fallback = [r for r in [2, 3, 4, 0, 5] if rule_filter.admit(r)]
    assert personal == [0, 1] and fallback == [3, 4, 5]


def test_max_per_category_does_not_cap_items_without_a_category():
    uncategorised = ["G", "H", "I", "J"]
    rule_filter = RuleFilter(RuleSet(max_per_category=1), [None] * 4, uncategorised)
    assert [uncategorised[r] for r in range(4) if rule_filter.admit(r)] == uncategorised
    # F has no category: the caps of mugs and bags, both used up, do not stop it
    assert admitted(RuleSet(max_per_category=1), [0, 1, 3, 4, 5]) == ["A", "D", "F"]


@pytest.mark.parametrize(("rules", "named"), [
    ({"categories": "mugs"}, "categories"),  # a string is not a list: "mug" in "mugs" would match
    ({"exclude_items": "AB"}, "exclude_items"),
    ({"exclude_purchased": "false"}, "exclude_purchased"),  # a non-empty string is true
    ({"max_per_category": "2"}, "max_per_category"),
    ({"max_per_category": True}, "max_per_category"),
])
def test_from_mapping_refuses_values_of_the_wrong_type(rules, named):
    with pytest.raises(ValueError, match=f"placement 'home'.{named}: expected"):
        RuleSet.from_mapping(rules, where="placement 'home'")


def test_from_mapping_rejects_unknown_rules_and_bad_caps():
    with pytest.raises(ValueError, match="placement 'home': unknown rule.*exclude_bought"):
        RuleSet.from_mapping({"exclude_bought": True}, where="placement 'home'")
    with pytest.raises(ValueError, match="max_per_category must be >= 1"):
        RuleSet(max_per_category=0)


def test_override_and_active_names():
    base = RuleSet.from_mapping({"exclude_purchased": True, "categories": ["mugs"]})
    refined = base.override(max_per_category=1, categories=None, exclude_items=["A"])
    assert refined.categories == frozenset({"mugs"}) and refined.exclude_items == frozenset({"A"})
    assert refined.active == ["exclude_purchased", "exclude_items", "categories", "max_per_category"]
