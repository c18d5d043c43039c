"""What would stop the server at start is one message before uvicorn starts, not a start-up traceback."""

from __future__ import annotations

from serving.app import setup_problems


def test_nothing_to_report_with_the_defaults(monkeypatch):
    monkeypatch.delenv("RECSYS_SERVING_OFFER_CATALOGUE_PATH", raising=False)
    monkeypatch.delenv("RECSYS_SERVING_EXPERIMENTS_PATH", raising=False)
    assert setup_problems() is None


def test_invalid_settings_are_named_by_their_variables(monkeypatch):
    monkeypatch.setenv("RECSYS_SERVING_MAX_K", "0")
    monkeypatch.setenv("RECSYS_SERVING_STORE_PREFIX", "a:b")
    lines = setup_problems().splitlines()
    assert lines[0] == "invalid serving settings:"
    assert any(line.startswith("  RECSYS_SERVING_MAX_K: Input should be greater than or equal to 1") for line in lines)
    assert any(line.startswith("  RECSYS_SERVING_STORE_PREFIX: Value error, the key prefix") for line in lines)


def test_a_bad_fallback_catalogue_or_designs_file_is_reported(monkeypatch, tmp_path):
    catalogue = tmp_path / "offers.yaml"
    catalogue.write_text("offers:\n  - id: x\n    name: X\n")
    monkeypatch.setenv("RECSYS_SERVING_OFFER_CATALOGUE_PATH", str(catalogue))
    assert "offer 'x': type: Field required" in setup_problems()
    monkeypatch.delenv("RECSYS_SERVING_OFFER_CATALOGUE_PATH")
    monkeypatch.setenv("RECSYS_SERVING_EXPERIMENTS_PATH", str(tmp_path / "missing.yaml"))
    missing = tmp_path / "missing.yaml"
    assert setup_problems() == f"RECSYS_SERVING_EXPERIMENTS_PATH: {missing}: No such file or directory"


def test_the_server_entry_point_reports_them_as_one_error_and_exits_2(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RECSYS_SERVING_MAX_K": "0"}
    done = subprocess.run([sys.executable, "-m", "serving", "--port", "1"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: invalid serving settings:\n  RECSYS_SERVING_MAX_K: ")
