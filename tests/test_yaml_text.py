"""The project's YAML reader: PyYAML's safe loader, with its silent cases made errors."""

from __future__ import annotations

import pytest
import yaml

from recsys.offers import CatalogueError, load_catalogue
from recsys.yaml_text import load_yaml


def test_a_key_written_twice_is_an_error_naming_both_lines():
    with pytest.raises(yaml.YAMLError, match=r"key 'a' appears twice \(first at line 1\)") as raised:
        load_yaml("a: 1\nb: 2\na: 3\n")
    assert raised.value.problem_mark.line + 1 == 3


def test_merge_keys_and_equal_keys_in_different_mappings_are_fine():
    text = "base: &base {p: 1}\nfirst:\n  <<: *base\n  q: 2\nsecond: {p: 3, q: 4}\n"
    assert load_yaml(text) == {"base": {"p": 1}, "first": {"p": 1, "q": 2}, "second": {"p": 3, "q": 4}}


def test_an_offer_missing_its_dash_is_refused_instead_of_merged_away(tmp_path):
    # without "- " before its id, the second offer's keys land in the first and the first offer vanished
    path = tmp_path / "offers.yaml"
    path.write_text("version: 1\noffers:\n"
                    "  - id: winback-15\n    name: Win back\n    type: free_shipping\n    value: 5\n    cost: 1\n"
                    "    id: first-repeat-5\n    name: First repeat\n")
    with pytest.raises(CatalogueError, match="key 'id' appears twice"):
        load_catalogue(path)
