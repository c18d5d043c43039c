"""`recsys audiences lookalike` end to end on a synthetic shop: the file it writes and its error lines."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app, main
from recsys.data import generate_transactions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    generate_transactions(n_customers=600, n_items=120, seed=4).to_csv(folder / "tx.csv", index=False)
    return folder


def _error_of(seed_file_text: str, shop, tmp_path, monkeypatch, capsys) -> str:
    """Run the command with a seed file of ``seed_file_text``; expect status 2 and no output file, and give
    back stderr on one line."""
    seeds = tmp_path / "seeds.csv"
    seeds.write_text(seed_file_text)
    monkeypatch.setattr("sys.argv", ["recsys", "audiences", "lookalike", "--data", str(shop / "tx.csv"),
                                     "--seeds", str(seeds), "--output", str(tmp_path / "out.csv")])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2 and not (tmp_path / "out.csv").exists()
    return " ".join(capsys.readouterr().err.split())


def test_writes_the_most_alike_customers_without_the_seeds(shop, tmp_path):
    seeds = ["10001", "10002", "10003", "10004", "10005"]
    # a segment export, as the API writes it: extra columns, and an id the shop never saw
    pd.DataFrame({"segment": "Champions", "customer_id": [*seeds, "ghost"]}).to_csv(tmp_path / "seeds.csv",
                                                                                     index=False)
    out = tmp_path / "audience" / "lookalikes.csv"
    result = CliRunner().invoke(app, ["audiences", "lookalike", "--data", str(shop / "tx.csv"), "--seeds",
                                      str(tmp_path / "seeds.csv"), "--output", str(out), "--size", "40"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "5 of 6 seed customers bought something in the data; without purchases, left out: ghost" in text
    audience = pd.read_csv(out, dtype={"customer_id": str})
    assert list(audience.columns) == ["customer_id", "rank", "seed_share", "seed_neighbours"]
    assert len(audience) == 40 and audience["rank"].tolist() == list(range(1, 41))
    assert not set(audience["customer_id"]) & set(seeds) and audience["customer_id"].is_unique
    assert audience["seed_share"].is_monotonic_decreasing and (audience["seed_share"] > 0).all()
    assert (audience["seed_neighbours"] >= 1).all()
    reachable = int(text.split(" other customers have a seed")[0].split()[-1].replace(",", ""))
    assert reachable >= 40 and f"wrote the 40 most alike to {out}" in text


@pytest.mark.parametrize(("content", "message"), [
    ("email\na@example.com\n", "{seeds}: no 'customer_id' column; columns: ['email']"),
    ("customer_id,segment\n10001,x\n,y\n",
     "{seeds}: 1 row(s) without a customer_id (data rows 2, counting from 1 after the header)"),
    ("customer_id\n", "{seeds}: no seed customers (the file has a header and no rows)"),
    ("customer_id\nghost-1\nghost-2\n",
     "none of the 2 seed customers bought anything in the cleaned data (first ids: ghost-1, ghost-2)"),
])
def test_a_seed_file_that_gives_no_seeds_is_one_error_line(content, message, shop, tmp_path, monkeypatch, capsys):
    err = _error_of(content, shop, tmp_path, monkeypatch, capsys)
    assert "error: " + message.format(seeds=tmp_path / "seeds.csv") in err, err
