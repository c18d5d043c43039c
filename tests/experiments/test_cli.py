from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from experiments.cli import app, main
from recsys.data import load_transactions
from tests.experiments.conftest import SMALL_CONFIG, write_config
from training.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def isolated_settings(var_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_VAR_DIR", str(var_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_run_prints_the_table_and_one_result_line_per_setting(synthetic_folder, tmp_path, var_dir,
                                                               isolated_settings):
    config = {**SMALL_CONFIG, "models": [{"model": "popularity"}, {"model": "ease", "params": {"l2": 50.0}}]}
    path = write_config(tmp_path, config)
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--data",
                                      str(synthetic_folder / "transactions.csv")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("| setting | model |") for line in lines)
    results = [line for line in lines if line.startswith("RESULT ")]
    assert [line.split()[1] for line in results] == ["setting=A", "setting=B"]
    assert (var_dir / "mlflow.db").exists()


def test_a_bad_config_exits_2_naming_file_and_field(tmp_path, isolated_settings):
    path = write_config(tmp_path, {**SMALL_CONFIG, "settings": ["Z"]})
    result = CliRunner().invoke(app, ["experiment", "run", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and "settings.0" in result.output


def test_training_commands_stay_on_the_composed_app():
    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert "train" in names
    assert "experiment" in {group.name for group in app.registered_groups}


def _run_command(monkeypatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["recsys", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code


@pytest.mark.parametrize("name", ["sales[eu].csv", "shop[/2024].csv"])
def test_an_error_line_shows_bracketed_text_verbatim(name, tmp_path, isolated_settings, monkeypatch, capsys):
    # Rich markup read "[eu]" as a style (naming the wrong file) and "[/2024]" as a closing tag (a traceback)
    assert _run_command(monkeypatch, "train", "--data", str(tmp_path / name)) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / name} does not exist" in err and "Traceback" not in err


def test_serve_with_a_bad_catalogue_is_one_error_before_uvicorn_starts(tmp_path, monkeypatch, capfd):
    catalogue = tmp_path / "offers.yaml"
    catalogue.write_text("offers:\n  - id: x\n")
    monkeypatch.setenv("RECSYS_SERVING_OFFER_CATALOGUE_PATH", str(catalogue))
    assert _run_command(monkeypatch, "serve", "--port", "1") == 2
    err = capfd.readouterr().err  # the server process writes it
    assert err.startswith("error: invalid offer catalogue:") and "Traceback" not in err


def test_a_tracking_server_that_is_down_or_a_reserved_alias_is_one_error_line(isolated_settings, monkeypatch,
                                                                              capsys):
    assert _run_command(monkeypatch, "models", "promote", "1", "--alias", "v3") == 2
    assert capsys.readouterr().err.startswith("error: --alias: Version alias name 'v3' is reserved.")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert _run_command(monkeypatch, "train", "--customers", "200", "--items", "60", "--no-publish") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MLflow tracking store http://127.0.0.1:1 (MLFLOW_TRACKING_URI) cannot be used")


def test_operator_mistakes_are_error_lines_on_stderr_before_any_work(tmp_path, isolated_settings, monkeypatch,
                                                                    capsys):
    assert _run_command(monkeypatch, "experiment", "run", str(tmp_path / "nope.yaml")) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and "nope.yaml" in err
    monkeypatch.setenv("RECSYS_OFFER_CATALOGUE", str(tmp_path / "nope.yaml"))
    assert _run_command(monkeypatch, "train", "--customers", "200", "--items", "60") == 2
    assert capsys.readouterr().err.startswith(
        f"error: offer catalogue {tmp_path / 'nope.yaml'} (--catalogue, or RECSYS_OFFER_CATALOGUE) does not exist")
    monkeypatch.setenv("RECSYS_STORE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    get_settings.cache_clear()
    assert _run_command(monkeypatch, "offers", "preview") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: no snapshot is current")


def test_a_demo_that_cannot_serve_stops_before_training(isolated_settings, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _run_command(monkeypatch, "demo", "--port", str(port), "--customers", "200", "--items", "60") == 2
    out, err = capsys.readouterr()
    assert f"cannot serve on 127.0.0.1:{port}" in " ".join(err.split())
    assert out == ""  # no step ran: nothing was trained, registered or published


def test_a_missing_data_file_ends_in_one_line_and_status_2(tmp_path, isolated_settings, monkeypatch, capsys):
    missing = tmp_path / "nowhere.csv"
    assert _run_command(monkeypatch, "train", "--data", str(missing)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "Traceback" not in err


def _train_on_rows(tmp_path, monkeypatch, capsys, rows: str) -> tuple[str, str]:
    """Train on a CSV of ``rows`` under the canonical header, expect status 2; the file and stderr."""
    data = tmp_path / "transactions.csv"
    data.write_text("customer_id,item_id,timestamp,quantity,unit_price,order_id\n" + rows)
    assert _run_command(monkeypatch, "train", "--data", str(data)) == 2
    return str(data), " ".join(capsys.readouterr().err.split())


def test_a_malformed_file_names_column_and_row(tmp_path, isolated_settings, monkeypatch, capsys):
    _, err = _train_on_rows(tmp_path, monkeypatch, capsys, "1,A,2024-01-01,2,3.5,o1\n2,B,notadate,1,2.0,o2\n")
    assert "column 'timestamp'" in err and "rows [1]" in err and "notadate" in err


def test_an_output_that_is_a_file_fails_before_the_run(small_config_path, tmp_path, isolated_settings, monkeypatch,
                                                      capsys):
    taken = tmp_path / "taken"
    taken.write_text("")
    assert _run_command(monkeypatch, "experiment", "run", str(small_config_path), "--output", str(taken)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: --output {taken} is a file")
    assert "Loading" not in captured.out  # nothing was loaded, fitted or logged


def test_verbose_keeps_the_traceback(tmp_path, isolated_settings, monkeypatch):
    monkeypatch.setattr("sys.argv", ["recsys", "--verbose", "train", "--data", str(tmp_path / "nowhere.csv")])
    with pytest.raises(FileNotFoundError):
        main()


def test_an_unreachable_store_ends_in_one_line_and_status_2(isolated_settings, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STORE_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    get_settings.cache_clear()
    assert _run_command(monkeypatch, "snapshots", "list") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "127.0.0.1:1" in err


@pytest.mark.parametrize(("args", "named"), [
    (["--format", "excel"], "--format"), (["--holdout-days", "0"], "--holdout-days"),
    (["--customers", "-5"], "--customers"), (["--cutoff", "someday"], "--cutoff"),
])
def test_train_options_are_checked_before_any_work(args, named, isolated_settings):
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2 and named in result.output


def test_a_cutoff_past_the_data_names_both_sides(isolated_settings, monkeypatch, capsys):
    args = ("train", "--customers", "200", "--items", "60", "--cutoff", "2090-01-01", "--no-publish",
            "--no-customers-job")
    assert _run_command(monkeypatch, *args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: cutoff 2090-01-01" in err and "0 in the evaluation window" in err


def test_a_file_that_cleaning_empties_says_what_was_dropped(tmp_path, isolated_settings, monkeypatch, capsys):
    returns_only, err = _train_on_rows(tmp_path, monkeypatch, capsys, "1,A,2024-01-01,-2,3.5,C1\n")
    # the cleaning counts are printed on the way, and the error repeats them
    assert "cleaning kept 0 of 1 rows; dropped cancellation 1" in err
    assert f"error: {returns_only}: no transactions left to train on" in err


def test_publishing_a_version_the_registry_lacks_names_what_it_has(isolated_settings, monkeypatch, capsys):
    assert _run_command(monkeypatch, "publish", "--model", "9") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: registered model 'recsys-recommender' has no version or alias '9'" in err
    assert "train first" in err


@pytest.mark.parametrize("name", ["shop.csv.gz", "SHOP.CSV", "shop.parquet"])
def test_generate_writes_what_the_name_says_and_train_reads_it_back(name, tmp_path, isolated_settings):
    out = tmp_path / name
    result = CliRunner().invoke(app, ["generate", str(out), "--customers", "50", "--items", "20"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] != b"PAR1" or name.endswith(".parquet")
    assert len(load_transactions(out)) > 0
