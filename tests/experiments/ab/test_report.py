from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy import stats
from typer.testing import CliRunner

from experiments.ab.report import ABDataError, analyze
from experiments.ab.statistics import ArmSummary, compare
from experiments.cli import app, main
from training.settings import get_settings


def units() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "arm": ["control", "control", "control", "control", "blue", "blue", "green", "green"],
        "revenue": [10.0, 12.0, np.nan, 8.0, 15.0, 13.0, 9.0, 11.0],
        "converted": [1, 0, 0, 1, 1, 1, 0, 1],
    })


def test_each_arm_against_the_control_from_the_unit_rows():
    report = analyze(units(), arm_column="arm", metrics=["revenue", "converted"], control="control",
                     weights={"control": 2, "blue": 1, "green": 1}, unit_column="customer_id")
    assert report.units == {"control": 4, "blue": 2, "green": 2}
    assert report.sample_ratio.chi_square == 0.0
    revenue_blue = report.results[0]
    assert (revenue_blue.metric, revenue_blue.treatment) == ("revenue", "blue")
    # the control's missing revenue is left out of revenue only, and counted
    control = revenue_blue.control_summary
    assert (control.n, control.mean, control.variance) == (3, pytest.approx(10.0), pytest.approx(4.0))
    assert revenue_blue.missing == {"control": 1, "blue": 0}
    # the same figures as from the raw sums: 10 + 12 + 8 = 30, 100 + 144 + 64 = 308; 15 + 13, 225 + 169
    by_hand = compare(ArmSummary(3, 30.0, 308.0), ArmSummary(2, 28.0, 394.0))
    got = revenue_blue.comparison
    assert (got.absolute, got.p_value, got.absolute_ci, got.relative_ci) == (
        pytest.approx(by_hand.absolute), pytest.approx(by_hand.p_value), pytest.approx(by_hand.absolute_ci),
        pytest.approx(by_hand.relative_ci))
    assert report.results[2].control_summary.n == 4  # converted: every control unit
    frame = report.to_frame()
    assert list(frame["treatment"]) == ["blue", "green", "blue", "green"]
    assert list(frame["missing_control"]) == [1, 1, 0, 0] and list(frame["missing_treatment"]) == [0, 0, 0, 0]
    # Holm over the two arms of a metric: the smaller p doubles
    p = sorted(r.comparison.p_value for r in report.results[:2])
    assert sorted(frame["p_adjusted"][:2]) == pytest.approx([2 * p[0], max(2 * p[0], p[1])])


def test_large_values_close_together_keep_their_variance():
    rng = np.random.default_rng(5)
    control, treatment = rng.normal(0, 1, 400), rng.normal(0.3, 1, 400)
    frame = pd.DataFrame({"arm": ["control"] * 400 + ["treatment"] * 400,
                          "x": 1e9 + np.concatenate([control, treatment])})
    (result,) = analyze(frame, arm_column="arm", metrics=["x"], control="control").results
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.comparison.p_value == pytest.approx(reference.pvalue, rel=1e-4)
    assert result.comparison.absolute == pytest.approx(treatment.mean() - control.mean(), abs=1e-6)
    assert result.control_summary.mean == pytest.approx(1e9 + control.mean(), abs=1e-6)


def test_a_ratio_of_large_values_close_together_keeps_its_variance():
    rng = np.random.default_rng(0)
    control, treatment = 1e9 + rng.normal(0, 1, 500), 1e9 + 0.2 + rng.normal(0, 1, 600)
    frame = pd.DataFrame({"arm": ["control"] * 500 + ["treatment"] * 600, "m": np.r_[control, treatment],
                          "d": np.ones(1100)})
    (result,) = analyze(frame, arm_column="arm", metrics=[], ratios={"r": ("m", "d")}, control="control").results
    # a denominator of 1 makes the ratio the plain mean: Welch's test on the values is the answer
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.comparison.p_value == pytest.approx(reference.pvalue, rel=1e-3)
    assert result.comparison.absolute == pytest.approx(treatment.mean() - control.mean(), abs=1e-6)


def test_zero_means_and_constant_arms_stay_exact_through_the_shift():
    # the report shifts values by their overall mean: the sums of an all-zero or constant arm then come
    # back as rounding (1e-17, 1e-33), which must not pass for a mean or a variance
    zero = pd.DataFrame({"arm": ["control"] * 7 + ["treatment"] * 3, "converted": [0] * 7 + [1, 1, 0]})
    (result,) = analyze(zero, arm_column="arm", metrics=["converted"], control="control").results
    assert result.control_summary.mean == 0.0 and result.comparison.relative is None
    assert result.comparison.note == "control mean is 0: no relative effect"
    constant = pd.DataFrame({"arm": ["control"] * 7 + ["treatment"] * 3, "converted": [0] * 7 + [1] * 3})
    (result,) = analyze(constant, arm_column="arm", metrics=["converted"], control="control").results
    assert result.comparison.p_value is None and result.comparison.note == "no variance in either arm"
    proportional = pd.DataFrame({"arm": ["control"] * 3 + ["treatment"] * 4, "rev": [0.1, 0.2, 0.3, 0.3, 0.6, 0.9, 0.3],
                                 "orders": [1, 2, 3, 1, 2, 3, 1]})  # a constant ratio in each arm
    (result,) = analyze(proportional, arm_column="arm", metrics=[], ratios={"aov": ("rev", "orders")},
                        control="control").results
    assert result.comparison.p_value is None and result.comparison.note == "no variance in either arm"


def test_an_arm_of_the_design_missing_from_the_data_is_a_sample_ratio_mismatch():
    frame = pd.DataFrame({"arm": ["control"] * 300 + ["treatment"] * 3, "x": np.arange(303.0)})
    report = analyze(frame, arm_column="arm", metrics=["x"], control="control",
                     weights={"control": 1, "treatment": 1, "holdout": 1})
    assert report.units == {"control": 300, "treatment": 3, "holdout": 0}
    assert report.sample_ratio.mismatch
    holdout = report.results[1].comparison  # no units: no mean, no effect, rather than numbers made up
    assert (holdout.treatment_mean, holdout.absolute, holdout.relative, holdout.p_value) == (None, None, None, None)
    assert holdout.note == "no units in treatment" and holdout.control_mean == pytest.approx(149.5)
    assert json.loads(json.dumps(report.to_dict()))["sample_ratio"]["mismatch"] is True


@pytest.mark.parametrize(("change", "options", "message"), [
    (lambda f: f.drop(columns="converted"), {}, "missing column(s) ['converted']"),
    (lambda f: f.assign(arm=f["arm"].where(f.index != 3)), {}, "column 'arm' is empty on rows [3]"),
    (lambda f: f.assign(customer_id=["a"] * 8), {"unit_column": "customer_id"}, "repeats unit(s) ['a']"),
    (lambda f: f.assign(converted=[1, 0, "yes", 1, 1, 1, 0, 1]), {}, "column 'converted' has non-numeric"),
    (lambda f: f.assign(revenue=f["revenue"].replace(8.0, np.inf)), {}, "column 'revenue' has non-numeric or infinite"),
    (lambda f: f, {"control": "red"}, "control arm 'red' is not among the arms"),
    (lambda f: f, {"weights": {"control": 1, "blue": 1}}, "holds arm(s) ['green'] that are not in the design"),
    (lambda f: f, {"weights": {"control": 1, "blue": 1, "green": -1}}, "weights must be positive"),
    (lambda f: f, {"alpha": 1.5}, "alpha must be between 0 and 1"),
    (lambda f: f.iloc[:0], {"weights": {"control": 1, "blue": 1}}, "no units: the data has no rows"),
    (lambda f: f[f["arm"] == "control"], {}, "only the arm(s) ['control']"),
    (lambda f: f[f["arm"] == "control"], {"weights": {"control": 1}}, "only the arm(s) ['control']"),
    (lambda f: f, {"weights": {"control": "1", "blue": 1, "green": 1}}, "weights must be positive"),
    (lambda f: f.assign(customer_id=["a", "b", None, "d", "e", "f", "g", " "]), {"unit_column": "customer_id"},
     "column 'customer_id' is empty on rows [2, 7]"),
    (lambda f: f.assign(revenue=[1e200, -1e200] * 4), {}, "column 'revenue' holds values too large to square"),
    (lambda f: f.assign(pre=[1, 2, None, 4, 5, 6, 7, 8]), {"covariates": {"revenue": "pre"}},
     "column 'pre' has missing, non-numeric or infinite values on rows [2]"),
    (lambda f: f, {"covariates": {"orders": "revenue"}}, "covariates given for ['orders']"),
])
def test_bad_unit_data_names_the_column_and_rows(change, options, message):
    kwargs = {"arm_column": "arm", "metrics": ["revenue", "converted"], "control": "control",
              "source": "outcomes.csv"} | options
    with pytest.raises(ABDataError) as caught:
        analyze(change(units()), **kwargs)
    assert str(caught.value).startswith("outcomes.csv: ") or "alpha" in message or "weights" in message
    assert message in str(caught.value)


@pytest.fixture
def isolated_tracking(var_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_VAR_DIR", str(var_dir))
    get_settings.cache_clear()
    yield var_dir
    get_settings.cache_clear()


def test_recsys_ab_analyze_prints_the_report_writes_json_and_logs_to_mlflow(tmp_path, isolated_tracking):
    rng = np.random.default_rng(7)
    n = 4000
    arm = np.where(np.arange(n) % 2 == 0, "control", "treatment")
    pre = rng.gamma(2.0, 20.0, n)
    revenue = 0.8 * pre + rng.normal(0, 5, n) + np.where(arm == "treatment", 2.0, 0.0)
    path = tmp_path / "outcomes.csv"
    pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "arm": arm, "revenue": revenue,
                  "pre_revenue": pre}).to_csv(path, index=False)
    output = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["ab", "analyze", str(path), "--metric", "revenue", "--covariate",
                                      "revenue=pre_revenue", "--weights", "control=1,treatment=1",
                                      "--unit-column", "customer_id", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "sample ratio: units {'control': 2000, 'treatment': 2000}" in result.output
    assert "revenue (CUPED, theta 0.8" in result.output and "significant" in result.output
    written = json.loads(output.read_text())
    (row,) = written["results"]
    assert row["absolute_low"] < 2.0 < row["absolute_high"]
    assert row["cuped_theta"] == pytest.approx(0.8, abs=0.02)
    # the same figures in MLflow, with the report as an artifact
    run_id = result.output.split("MLflow run ")[1].split()[0]
    client = MlflowClient(tracking_uri=f"sqlite:///{isolated_tracking / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.data.params["control"] == "control" and run.data.params["covariates.revenue"] == "pre_revenue"
    assert run.data.metrics["revenue.treatment.absolute"] == pytest.approx(row["absolute"])
    assert run.data.metrics["revenue.treatment.p_adjusted"] == pytest.approx(row["p_adjusted"])
    assert run.data.metrics["revenue.treatment.cuped_theta"] == pytest.approx(row["cuped_theta"])
    assert run.data.metrics["revenue.treatment.missing_control"] == row["missing_control"] == 0
    assert run.data.metrics["sample_ratio.p_value"] == pytest.approx(written["sample_ratio"]["p_value"])
    assert run.data.tags["recsys.kind"] == "ab-analysis"
    assert [a.path for a in client.list_artifacts(run_id)] == ["report.json"]


@pytest.mark.parametrize(("options", "message"), [
    (["--metric", "orders"], "missing column(s) ['orders']"),
    (["--metric", "revenue", "--weights", "control:1"], "--weights: expected NAME=VALUE, got 'control:1'"),
])
def test_recsys_ab_analyze_reports_bad_input_in_one_line(tmp_path, monkeypatch, capsys, options, message):
    path = tmp_path / "outcomes.csv"
    units().to_csv(path, index=False)
    monkeypatch.setattr("sys.argv", ["recsys", "ab", "analyze", str(path), "--no-mlflow", *options])
    with pytest.raises(SystemExit) as stopped:
        main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err


def test_recsys_ab_size_prints_units_per_arm_and_days():
    result = CliRunner().invoke(app, ["ab", "size", "--baseline-rate", "0.10", "--effect", "0.10", "--relative",
                                      "--daily-units", "3000"])
    assert result.exit_code == 0, result.output
    assert "14751 units per arm, 29502 in all over 2 arms" in result.output
    assert "about 10 days at 3000 units a day; run 14 days" in result.output
    both = CliRunner().invoke(app, ["ab", "size", "--effect", "1", "--sd", "5", "--baseline-rate", "0.1"])
    assert isinstance(both.exception, ABDataError) and "exactly one of" in str(both.exception)


def test_ratio_metrics_from_unit_rows_and_the_command_line(tmp_path):
    frame = pd.DataFrame({"arm": ["control"] * 4 + ["treatment"] * 4,
                          "revenue": [10.0, 20.0, 30.0, 0.0, 40.0, 30.0, np.nan, 22.0],
                          "orders": [1, 2, 3, 1, 2, 2, 1, 2]})
    (aov,) = analyze(frame, arm_column="arm", metrics=[], control="control",
                     ratios={"aov": ("revenue", "orders")}).results
    # 60 / 7 against (40 + 30 + 22) / 6, the unit without revenue left out and counted
    assert (aov.metric, aov.comparison.control_mean, aov.comparison.treatment_mean) == (
        "aov", pytest.approx(60 / 7), pytest.approx(92 / 6))
    assert aov.missing == {"control": 0, "treatment": 1} and aov.comparison.p_value is not None
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["ab", "analyze", str(path), "--no-mlflow", "--ratio", "aov=revenue/orders"])
    assert result.exit_code == 0, result.output
    assert "aov: treatment vs control" in result.output and "means     15.3333 vs 8.57143" in result.output
    bad = CliRunner().invoke(app, ["ab", "analyze", str(path), "--no-mlflow", "--ratio", "aov=revenue"])
    assert "--ratio: expected NAME=NUMERATOR/DENOMINATOR, got 'aov=revenue'" in str(bad.exception)
    with pytest.raises(ABDataError, match=r"missing column\(s\) \['visits'\]"):
        analyze(frame, arm_column="arm", metrics=[], control="control", ratios={"cr": ("orders", "visits")})
