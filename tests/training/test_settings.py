"""The batch jobs' settings: an invalid one names the variable it came from."""

from __future__ import annotations

import pytest

from training.settings import SettingsError, get_settings


def test_a_bad_store_prefix_names_its_own_variable(monkeypatch):
    monkeypatch.setenv("RECSYS_STORE_PREFIX", "bad prefix")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="RECSYS_STORE_PREFIX: Value error, the key prefix must be"):
            get_settings()
    finally:
        get_settings.cache_clear()
