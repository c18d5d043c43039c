"""YAML as the project's config files read it: safe, and every problem a ``yaml.YAMLError``."""

from __future__ import annotations

from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that an impossible date (2023-02-30) is a YAMLError naming its
    line, not a bare ValueError from ``datetime``, so callers that report bad YAML report it too; and a
    key written twice in one mapping is a YAMLError naming both lines, where PyYAML keeps the last value
    without a word (a list entry missing its ``- `` then merges into the one before it and vanishes)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<" merges another mapping's keys; that is not a repeat
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):
                    continue  # an unhashable key: PyYAML's own check reports it
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", seen[key], f"key {key!r} appears twice (first at line "
                        f"{seen[key].line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a valid date or time "
                                                    f"({exc})", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, raising only ``yaml.YAMLError`` for text that is not valid YAML."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
