"""A small synthetic shop written to CSV and a stratified-split config that names it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recsys.data import generate_transactions

SMALL_CONFIG = {
    "name": "synthetic-test",
    "experiment": "experiments-test",
    "seed": 0,
    "data": {"path": "transactions.csv", "format": "canonical"},
    "protocol": {"kind": "stratified", "ratio": 0.75, "seed": 42},
    "settings": ["A", "B"],
    "selection": "ndcg@10",
    "curve_max_k": 20,
    "models": [
        {"model": "popularity"},
        {"model": "item_knn", "label": "item_knn_cosine", "params": {"similarity": "cosine", "neighbours": [10, 50]}},
        {"model": "ease", "params": {"l2": [10.0, 200.0]}},
        {"model": "als", "params": {"iterations": 3, "random_state": 0, "num_threads": 1},
         "search": {"n_trials": 2, "seed": 1, "space": {
             "factors": {"type": "int", "low": 4, "high": 16, "log": True},
             "regularization": {"type": "float", "low": 0.001, "high": 1.0, "log": True}}}},
    ],
}


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    generate_transactions(n_customers=400, n_items=80, seed=5).to_csv(folder / "transactions.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def small_config_path(synthetic_folder) -> Path:
    return write_config(synthetic_folder, SMALL_CONFIG)


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory) -> Path:
    """One embedded tracking store for every run of these tests: creating its schema is the slow part."""
    return tmp_path_factory.mktemp("var")
