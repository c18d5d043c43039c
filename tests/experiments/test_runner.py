"""The runner end to end on a small synthetic shop with the stratified protocol: structure, artifacts,
determinism and the RESULT lines."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from experiments.config import load_config
from experiments.runner import run_experiment
from recsys.data import clean_transactions, load_transactions
from tests.experiments.conftest import write_config
from training.settings import TrainingSettings

pytestmark = pytest.mark.slow

RESULT = re.compile(r"^RESULT setting=(?P<setting>[AB]) model=(?P<model>\S+) ndcg@10=\d\.\d{4} recall@10=\d\.\d{4} "
                    r"recall@20=\d\.\d{4} precision@10=\d\.\d{4} map@10=\d\.\d{4} coverage@10=\d\.\d{4}$")


@pytest.fixture(scope="module")
def runs(small_config_path, var_dir, tmp_path_factory):
    """The same config run twice into one tracking store, each with its own output folder."""
    config = load_config(small_config_path)
    text = small_config_path.read_text()
    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        for attempt in range(2):
            root = tmp_path_factory.mktemp(f"run{attempt}")
            settings = TrainingSettings(var_dir=var_dir)
            result = run_experiment(config, settings, config_text=text, output_dir=root / "out")
            results.append((result, settings, root / "out", mlflow.get_tracking_uri()))
    return results


def test_same_config_twice_gives_identical_tables_and_figures(runs):
    (first, _, first_out, _), (second, _, second_out, _) = runs
    assert first.run_id != second.run_id
    assert first.table.equals(second.table)
    assert first.candidates.equals(second.candidates)
    assert first.result_lines == second.result_lines
    for name in ("comparison.csv", "comparison.md", "validation.csv", "curves.csv", "winners.json",
                 "plots/curves_A.png", "plots/curves_B.png", "plots/coverage.png"):
        assert (first_out / name).read_bytes() == (second_out / name).read_bytes(), name


def test_table_has_one_row_per_setting_and_model_with_test_metrics(runs):
    result = runs[0][0]
    table = result.table
    labels = ["popularity", "item_knn_cosine", "ease", "als"]
    assert sorted(map(tuple, table[["setting", "model"]].to_numpy())) == sorted(
        (setting, label) for setting in "AB" for label in labels)
    for setting in "AB":
        rows = table[table["setting"] == setting]
        assert rows["validation"].is_monotonic_decreasing
        assert ((rows["ndcg@10"] >= 0) & (rows["ndcg@10"] <= 1)).all()
        assert (rows["recall@20"] >= rows["recall@10"] - 1e-12).all()
    # the grids and the search were all scored on validation: 1 + 2 + 2 + 2 candidates, both settings
    assert len(result.candidates) == 7 * 2


def test_result_lines_name_the_validation_winner(runs):
    result = runs[0][0]
    assert [RESULT.match(line)["setting"] for line in result.result_lines] == ["A", "B"]
    for line in result.result_lines:
        match = RESULT.match(line)
        rows = result.table[result.table["setting"] == match["setting"]]
        best = rows.iloc[rows["validation"].to_numpy().argmax()]
        assert match["model"] == best["model"]
        assert f"ndcg@10={best['ndcg@10']:.4f}" in line


def test_mlflow_parent_with_nested_children_and_artifacts(runs):
    result, _, _, uri = runs[0]
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(result.run_id)
    assert parent.data.tags["job"] == "experiment"
    # what the fits ran on, to tell a rerun elsewhere apart from a change
    assert parent.data.tags["numerics.numpy"] == np.__version__
    assert parent.data.tags["numerics.blas"] not in ("", "none loaded")
    assert parent.data.params["winner.A"] == result.winners["A"].candidate.label
    assert "test.A.ndcg_at_10" in parent.data.metrics
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    roles = [child.data.tags["role"] for child in children]
    assert roles.count("candidate") == 7
    assert 4 <= roles.count("test") <= 8  # one refit per model, two when A and B chose differently
    assert all(child.info.status == "FINISHED" for child in children)
    candidate = next(c for c in children if c.data.tags["role"] == "candidate" and c.data.tags["label"] == "ease")
    assert "validation.A.ndcg_at_10" in candidate.data.metrics and "l2" in candidate.data.params
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"comparison.csv", "comparison.md", "validation.csv", "curves.csv", "winners.json", "config.yaml",
            "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == {"plots/curves_A.png", "plots/curves_B.png", "plots/coverage.png"}


def _run_popularity(synthetic_folder, var_dir, folder, protocol, output_dir=None):
    """One cheap run (the popularity model, setting A only) of the synthetic shop; returns the result, the
    lines passed to ``report`` and the tracking URI."""
    config = {"name": "popularity-only", "experiment": "experiments-test",
              "data": {"path": str(synthetic_folder / "transactions.csv")}, "protocol": protocol,
              "settings": ["A"], "metrics": ["ndcg@10"], "models": [{"model": "popularity"}]}
    reported = []
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        result = run_experiment(load_config(write_config(folder, config)), TrainingSettings(var_dir=var_dir),
                                report=reported.append, output_dir=output_dir)
        return result, reported, mlflow.get_tracking_uri()


@pytest.fixture(scope="module")
def popularity_run(synthetic_folder, var_dir, tmp_path_factory):
    """A run into an output folder that already holds an unrelated note and an older run's plot for setting B."""
    folder = tmp_path_factory.mktemp("popularity")
    (folder / "out" / "plots").mkdir(parents=True)
    (folder / "out" / "notes.txt").write_text("not this run's\n")
    (folder / "out" / "plots" / "curves_B.png").write_bytes(b"an older run's plot")
    return _run_popularity(synthetic_folder, var_dir, folder, {"kind": "stratified"}, output_dir=folder / "out")


def test_only_the_files_this_run_wrote_are_logged(popularity_run):
    result, _, uri = popularity_run
    client = MlflowClient(tracking_uri=uri)
    logged = {a.path for a in client.list_artifacts(result.run_id)} - {"plots"}
    logged |= {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert logged == set(result.artifacts)
    assert "notes.txt" not in logged and "plots/curves_B.png" not in logged


def test_cleaning_counts_are_reported_right_after_loading(popularity_run, synthetic_folder):
    reported = popularity_run[1]
    expected = clean_transactions(load_transactions(synthetic_folder / "transactions.csv")).report
    assert expected.dropped["cancellation"] > 0, "the synthetic shop has cancellations to drop"
    assert reported[0].startswith("Loading ")
    assert reported[1] == str(expected)


def test_cutoffs_with_a_utc_offset_split_the_naive_utc_data(synthetic_folder, var_dir, tmp_path):
    protocol = {"kind": "temporal", "validation_cutoff": "2024-06-01T00:00:00+02:00",
                "test_cutoff": "2024-09-01T00:00:00+02:00"}
    result, reported, uri = _run_popularity(synthetic_folder, var_dir, tmp_path, protocol)
    assert [line.split(" fold:")[0] for line in reported if " fold:" in line] == ["validation", "test"]
    params = MlflowClient(tracking_uri=uri).get_run(result.run_id).data.params
    assert params["protocol.validation_cutoff"] == "2024-05-31T22:00:00"


def test_the_candidates_file_shows_the_selection_metric_even_when_not_among_the_metrics():
    from types import SimpleNamespace

    from experiments.runner import candidates_frame

    config = SimpleNamespace(settings=["A"], metrics=["ndcg@10"], selection_metric=lambda setting: "map@5")
    candidate = SimpleNamespace(label="item_knn", name="item_knn[neighbours=5]", params={"neighbours": 5},
                                validation={"A": {"ndcg@10": 0.31, "map@5": 0.22}})
    frame = candidates_frame([candidate], config)
    assert list(frame.columns) == ["setting", "model", "candidate", "params", "ndcg@10", "map@5"]
    assert frame.loc[0, "map@5"] == 0.22
