"""``recsys generate``: one seed gives the same bytes, compressed or not."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from recsys.data import load_transactions


@pytest.mark.parametrize("name", ["out.csv.gz", "out.csv.zip", "out.csv.bz2", "out.csv", "out.parquet"])
def test_generate_writes_the_same_bytes_at_different_times(name, tmp_path, monkeypatch):
    outputs = []
    for run, now in enumerate((1_000_000_000.0, 1_700_000_000.0)):  # gzip and zip would store the time
        monkeypatch.setattr(time, "time", lambda now=now: now)
        out = tmp_path / str(run) / name
        result = CliRunner().invoke(app, ["generate", str(out), "--customers", "30", "--items", "60", "--seed", "3"])
        assert result.exit_code == 0, result.output
        outputs.append(out)
    monkeypatch.undo()
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert len(load_transactions(outputs[0])) > 0
