from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from experiments.config import ConfigError, ExperimentConfig, ModelConfig, load_config, parse_metric
from recsys.data import CleaningRules
from tests.experiments.conftest import SMALL_CONFIG, write_config

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def _with(**changes) -> dict:
    return {**SMALL_CONFIG, **changes}


def _error(tmp_path: Path, config: dict) -> str:
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)), "every error names the file"
    return message


def test_small_config_loads_and_resolves_the_data_path_against_the_file(small_config_path):
    config = load_config(small_config_path)
    assert config.data.path == small_config_path.parent / "transactions.csv"
    assert config.data.cleaning.rules() == CleaningRules()
    assert config.ks == [10, 20]
    assert config.selection_metric("B") == "ndcg@10"


def test_data_override_replaces_path_and_format(small_config_path, tmp_path):
    config = load_config(small_config_path, data=tmp_path / "other.parquet", data_format="online-retail")
    assert config.data.path == (tmp_path / "other.parquet").resolve()
    assert config.data.format == "online-retail"


@pytest.mark.parametrize("name", ["online_retail.yaml", "synthetic_stratified.yaml"])
def test_checked_in_configs_are_valid(name):
    config = load_config(CONFIGS / name)
    assert config.models and config.settings == ["A", "B"]


@pytest.mark.parametrize(("change", "where", "words"), [
    ({"data": {"path": "x.csv", "format": "parquet"}}, "data.format", "canonical"),
    ({"data": {"path": "x.csv", "cleaning": {"drop_cancelations": True}}}, "data.cleaning.drop_cancelations",
     "Extra inputs"),
    # kept, rows without a customer would stop the split with a bare error once the data were loaded
    ({"data": {"path": "x.csv", "cleaning": {"drop_missing_customer": False}}},
     "data.cleaning.drop_missing_customer", "needs a customer for each row"),
    ({"protocol": {"kind": "temporal", "validation_cutoff": "2011-09-09", "test_cutoff": "2011-06-09"}},
     "protocol", "must be before"),
    ({"protocol": {"kind": "stratified", "ratio": 1.5}}, "protocol.ratio", "less than 1"),
    ({"protocol": {"kind": "random"}}, "protocol", "temporal"),
    ({"settings": ["A", "C"]}, "settings.1", "'A' or 'B'"),
    ({"metrics": ["ndcg@10", "hits@5"]}, "metrics", "'hits@5' is not a metric"),
    ({"selection": {"C": "ndcg@10"}}, "selection", "not in settings"),
    ({"selection": "foo@10"}, "selection", "'foo@10' is not a metric"),
    ({"settings": ["A"], "models": [{"model": "als", "search": {"n_trials": 2, "setting": "B", "space": {
        "factors": {"type": "int", "low": 4, "high": 8}}}}]}, "models.0.search.setting", "not in settings"),
    ({"models": [{"model": "alz"}]}, "models.0", "did you mean 'als'"),
    ({"models": [{"model": "item_knn", "params": {"neighbors": [1, 2]}}]}, "models.0",
     "'neighbors' (did you mean 'neighbours'?)"),
    ({"models": [{"model": "ease", "params": {"l2": []}}]}, "models.0", "empty grid"),
    ({"models": [{"model": "als", "search": {"n_trials": 2, "space": {
        "factors": {"type": "int", "low": 0, "high": 8, "log": True}}}}]},
     "models.0.search.space.factors", "low > 0"),
    ({"models": [{"model": "als", "search": {"n_trials": 2, "space": {
        "factors": {"type": "categorical"}}}}]}, "models.0.search.space.factors", "choices"),
    ({"models": [{"model": "als", "params": {"factors": 8}, "search": {"n_trials": 2, "space": {
        "factors": {"type": "int", "low": 4, "high": 8}}}}]}, "models.0", "both fixed"),
    ({"models": [{"model": "ease"}, {"model": "ease"}]}, "models", "used twice"),
])
def test_errors_name_the_field_path(tmp_path, change, where, words):
    message = _error(tmp_path, _with(**change))
    line = next((line for line in message.splitlines() if line.strip().startswith(f"{where}:")), None)
    assert line is not None, message
    assert words in line


def test_several_errors_are_reported_together(tmp_path):
    message = _error(tmp_path, _with(settings=["C"], metrics=["x"]))
    assert "2 invalid field(s)" in message


def test_missing_file_and_bad_yaml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)


def test_an_impossible_date_is_bad_yaml_naming_file_and_line(tmp_path):
    # YAML turns 2023-02-30 into datetime's bare ValueError, with no position
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: x.csv}\nprotocol:\n  kind: temporal\n  validation_cutoff: 2023-02-30\n"
                   "  test_cutoff: 2023-06-01\nmodels: [{model: popularity}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: not valid YAML") and "'2023-02-30' is not a valid date" in message
    assert "line 4" in message


def test_grid_expands_lists_in_file_order_last_key_fastest():
    entry = ModelConfig(model="item_knn", params={"similarity": ["cosine", "bm25"], "neighbours": [10, 50],
                                                   "num_threads": 1})
    assert entry.grid() == [
        {"similarity": "cosine", "neighbours": 10, "num_threads": 1},
        {"similarity": "cosine", "neighbours": 50, "num_threads": 1},
        {"similarity": "bm25", "neighbours": 10, "num_threads": 1},
        {"similarity": "bm25", "neighbours": 50, "num_threads": 1},
    ]
    assert ModelConfig(model="popularity").grid() == [{}]


def test_selection_per_setting_and_ks_cover_it():
    config = ExperimentConfig.model_validate(_with(selection={"B": "recall@30"}, metrics=["ndcg@10"]))
    assert config.selection_metric("A") == "ndcg@10"
    assert config.selection_metric("B") == "recall@30"
    assert config.ks == [10, 30]


def test_parse_metric():
    assert parse_metric("map@20") == ("map", 20)
    for bad in ("ndcg", "ndcg@0", "auc@10", "NDCG@10"):
        with pytest.raises(ValueError):
            parse_metric(bad)


@pytest.mark.parametrize(("models", "where", "words"), [
    ([{"model": "item_knn", "params": {"neighbours": -5}}], "models.0.params.neighbours", "neighbours must be >= 1"),
    ([{"model": "als", "params": {"iterations": "ten"}}], "models.0.params.iterations", "rejects iterations='ten'"),
    # a grid is built point by point, and the bad value is named even when the constructor's message does not
    ([{"model": "popularity"}, {"model": "als", "params": {"factors": [8, 0], "iterations": [2, 3]}}],
     "models.1.params.factors", "rejects factors=0"),
    ([{"model": "als", "search": {"n_trials": 2, "space": {"factors": {"type": "int", "low": 0, "high": 8}}}}],
     "models.0.search.space.factors", "rejects factors=0"),
    ([{"model": "item_knn", "search": {"n_trials": 2, "space": {
        "similarity": {"type": "categorical", "choices": ["cosine", "jaccard"]}}}}],
     "models.0.search.space.similarity", "similarity='jaccard' is not one of"),
    # implicit would refuse a fractional count only once fitting, after the data were loaded
    ([{"model": "als", "params": {"factors": [8, 16.5]}}], "models.0.params.factors",
     "factors must be an integer >= 1, got 16.5"),
    ([{"model": "bpr", "search": {"n_trials": 2, "space": {"factors": {"type": "float", "low": 4, "high": 8}}}}],
     "models.0.search.space.factors", "factors must be an integer >= 1, got 4.0"),
])
def test_parameter_values_the_model_rejects_name_the_field(tmp_path, models, where, words):
    message = _error(tmp_path, _with(models=models))
    line = next((line for line in message.splitlines() if line.strip().startswith(f"{where}:")), None)
    assert line is not None, message
    assert words in line
    assert "Traceback" not in message


@pytest.mark.parametrize(("space", "words"), [
    ({"type": "float", "low": 0.01, "high": 1.0, "step": 0}, "'step' must be > 0"),
    ({"type": "int", "low": 8, "high": 32, "step": -2}, "'step' must be > 0"),
    # Optuna takes an int step for an int dimension: 2.5 would silently search every 2nd value instead
    ({"type": "int", "low": 8, "high": 32, "step": 2.5}, "whole-number 'step'"),
])
def test_search_steps_must_be_positive_and_whole_for_int_dimensions(tmp_path, space, words):
    models = [{"model": "als", "search": {"n_trials": 2, "space": {"factors": space}}}]
    message = _error(tmp_path, _with(models=models))
    line = next((line for line in message.splitlines() if line.strip().startswith("models.0.search.space.factors:")),
                None)
    assert line is not None, message
    assert words in line


def test_a_whole_number_int_step_written_as_a_float_is_accepted(tmp_path):
    models = [{"model": "als", "search": {"n_trials": 2, "space": {
        "factors": {"type": "int", "low": 8, "high": 32, "step": 2.0}}}}]
    config = load_config(write_config(tmp_path, _with(models=models)))
    assert config.models[0].search.space["factors"].step == 2


def test_cutoffs_with_a_utc_offset_become_naive_utc_like_the_loaded_timestamps(tmp_path):
    # quoted: a string; unquoted: YAML's own timestamp type, with its offset
    protocol = {"kind": "temporal", "validation_cutoff": "2024-06-01T00:00:00+02:00",
                "test_cutoff": datetime(2024, 9, 1, tzinfo=timezone(timedelta(hours=2))), "end": "2024-12-31"}
    config = load_config(write_config(tmp_path, _with(protocol=protocol)))
    assert config.protocol.validation_cutoff == "2024-05-31T22:00:00"
    assert config.protocol.test_cutoff == "2024-08-31T22:00:00"
    assert config.protocol.end == "2024-12-31", "a cut-off without an offset is kept as written"


def test_cutoffs_with_and_without_an_offset_compare_as_instants(tmp_path):
    # 01:00 at +02:00 is 23:00 UTC the day before: earlier than midnight UTC, though its clock reads later
    protocol = {"kind": "temporal", "validation_cutoff": "2024-06-01T01:00:00+02:00", "test_cutoff": "2024-06-01"}
    config = load_config(write_config(tmp_path, _with(protocol=protocol)))
    assert config.protocol.validation_cutoff == "2024-05-31T23:00:00"
    swapped = {**protocol, "validation_cutoff": "2024-06-01", "test_cutoff": "2024-06-01T01:00:00+02:00"}
    assert "must be before" in _error(tmp_path, _with(protocol=swapped))
