"""YAML as the project's config files read it: safe, and every problem a ``yaml.YAMLError``."""

from __future__ import annotations

from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that an impossible date (2023-02-30) is a YAMLError naming its
    line, not a bare ValueError from ``datetime``, so callers that report bad YAML report it too."""

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
