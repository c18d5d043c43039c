from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.ab.assignment import ExperimentDesign
from experiments.ab.outcomes import unit_outcomes
from experiments.ab.report import ABDataError
from experiments.cli import app
from feature_store import open_limits
from recsys.data import clean_transactions, load_transactions
from serving.services.experiments import ExperimentService

HEADER = "order_id,customer_id,item_id,timestamp,quantity,unit_price\n"
LINES = [
    # c1: one order before exposure (pre), two orders in the window, one after it
    "o1,c1,i1,2024-01-01 10:00,2,5.0", "o2,c1,i1,2024-01-12 09:00,1,5.0", "o2,c1,i2,2024-01-12 09:00,1,3.0",
    "o3,c1,i2,2024-01-20 12:00,4,3.0", "o4,c1,i1,2024-02-20 12:00,1,5.0",
    # c2 buys nothing after exposure; c3 never buys; c4 was exposed too late for a full window
    "o5,c2,i1,2024-01-05 10:00,1,5.0", "o6,c9,i1,2024-02-25 10:00,1,5.0",
    # the shop's first sale: the 28 days before each exposure lie within the data
    "o0,c8,i1,2023-11-01 10:00,1,5.0",
]
EXPOSURES = pd.DataFrame({"unit_id": ["c1", "c2", "c3", "c4"], "arm": ["treatment", "control", "treatment", "control"],
                          "exposed_at": ["2024-01-10T00:00:00.000+00:00", "2024-01-10T00:00:00.000+00:00",
                                         "2024-01-11T08:30:00.000+00:00", "2024-02-20T00:00:00.000+00:00"]})


@pytest.fixture
def transactions(tmp_path):
    path = tmp_path / "transactions.csv"
    path.write_text(HEADER + "\n".join(LINES) + "\n")
    return path


def test_outcomes_by_hand(transactions):
    frame = clean_transactions(load_transactions(transactions)).transactions
    result = unit_outcomes(EXPOSURES, frame, days=14, pre_days=28)
    assert result.ends_after_data == 1 and result.data_end == pd.Timestamp("2024-02-25 10:00")
    assert result.starts_before_data == 0 and result.data_start == pd.Timestamp("2023-11-01 10:00")
    assert result.never_bought == 2  # c3, and c4 (left out for its window)
    # 90 days before the January exposures reach back before the first sale: their covariate would be short
    early = unit_outcomes(EXPOSURES, frame, days=14, pre_days=90)
    assert (early.ends_after_data, early.starts_before_data, len(early.frame)) == (1, 3, 0)
    rows = result.frame.set_index("unit_id")[["orders", "revenue", "converted", "pre_orders", "pre_revenue"]]
    assert list(rows.index) == ["c1", "c2", "c3"]
    # c1: o2 (5 + 3) on day 2 and o3 (12) on day 10 of its window; o1 (10) nine days before
    assert rows.loc["c1"].tolist() == [2, 20.0, 1, 1, 10.0]
    assert rows.loc["c2"].tolist() == [0, 0.0, 0, 1, 5.0]
    assert rows.loc["c3"].tolist() == [0, 0.0, 0, 0, 0.0]


@pytest.mark.parametrize(("exposures", "message"), [
    (EXPOSURES.drop(columns="arm"), "missing column(s) ['arm']"),
    (pd.concat([EXPOSURES, EXPOSURES.iloc[:1]]), "unit(s) ['c1'] appear more than once"),
    (EXPOSURES.assign(exposed_at=["2024-01-10", "yesterday", "2024-01-10", "2024-01-10"]),
     "'exposed_at' is not an ISO 8601 time at rows [1]"),
])
def test_bad_exposures_name_the_problem(transactions, exposures, message):
    frame = clean_transactions(load_transactions(transactions)).transactions
    with pytest.raises(ABDataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        unit_outcomes(exposures, frame, days=14, pre_days=28, source="exposures.csv")


def test_from_served_exposures_to_the_report(tmp_path):
    """The service logs exposures to the limits store; the three commands export them, join the
    transactions of the weeks after and analyse."""
    limits_url = f"sqlite:///{tmp_path / 'limits.sqlite'}"
    design = ExperimentDesign.from_mapping("home-recs", {"arms": ["control", "treatment"]})
    units = [f"c{i}" for i in range(40)]

    async def serve():
        service = ExperimentService({"home-recs": design}, open_limits(limits_url, prefix="shop"))
        try:
            for unit in [*units, "c1", "c2"]:  # repeats are not logged again
                await service.assignment("home-recs", unit)
        finally:
            await service.limits.close()

    asyncio.run(serve())
    runner = CliRunner()
    exposed = runner.invoke(app, ["ab", "exposures", "home-recs", "--output", str(tmp_path / "exposures.csv"),
                                  "--limits-url", limits_url, "--prefix", "shop"])
    assert exposed.exit_code == 0, exposed.output
    assert "40 units exposed to 'home-recs'" in exposed.output
    exposures = pd.read_csv(tmp_path / "exposures.csv")
    assert list(exposures["unit_id"]) == units
    assert list(exposures["arm"]) == [design.assign(u) for u in units]

    # every third customer orders on the third day after exposure; the last line closes the 7-day windows
    start = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("min")
    lines = [f"o{i},c{i},i1,{start + pd.Timedelta(days=3)},{1 + i % 4},5.0" for i in range(0, 40, 3)]
    lines.append(f"o99,other,i1,{start + pd.Timedelta(days=9)},1,5.0")
    lines.append(f"o98,other,i1,{start - pd.Timedelta(days=30)},1,5.0")  # the data cover the 28 days before
    (tmp_path / "transactions.csv").write_text(HEADER + "\n".join(lines) + "\n")
    outcomes = runner.invoke(app, ["ab", "outcomes", str(tmp_path / "exposures.csv"), "--transactions",
                                   str(tmp_path / "transactions.csv"), "--output", str(tmp_path / "units.csv"),
                                   "--days", "7"])
    assert outcomes.exit_code == 0, outcomes.output
    table = pd.read_csv(tmp_path / "units.csv")
    assert "40 units written" in outcomes.output and "left out: 0 whose 7-day window" in outcomes.output
    assert table["converted"].sum() == 14 and table["revenue"].sum() == 5.0 * sum(1 + i % 4 for i in range(0, 40, 3))

    report = runner.invoke(app, ["ab", "analyze", str(tmp_path / "units.csv"), "--no-mlflow", "--metric", "revenue",
                                 "--metric", "converted", "--weights", "control=1,treatment=1",
                                 "--unit-column", "unit_id"])
    assert report.exit_code == 0, report.output
    counts = exposures["arm"].value_counts()
    assert f"units {{'control': {counts['control']}, 'treatment': {counts['treatment']}}}" in report.output
    assert "revenue: treatment vs control" in report.output and "converted: treatment vs control" in report.output

    bad = runner.invoke(app, ["ab", "outcomes", str(tmp_path / "exposures.csv"), "--transactions",
                              str(tmp_path / "transactions.csv"), "--output", str(tmp_path / "u.csv"),
                              "--format", "excel"])
    assert bad.exit_code == 2 and "'excel' is not one of" in bad.output


def test_unit_ids_match_customer_ids_as_the_loaders_write_them(transactions):
    frame = clean_transactions(load_transactions(transactions)).transactions
    floats = EXPOSURES.assign(unit_id=[" c1", "c2", "c3 ", "c4"])
    rows = unit_outcomes(floats, frame, days=14, pre_days=28).frame.set_index("unit_id")
    assert rows.loc["c1", "orders"] == 2 and rows.loc["c3", "orders"] == 0
    numbers = pd.DataFrame({"customer_id": ["40117"], "order_id": ["o1"], "item_id": ["i1"], "quantity": [1.0],
                            "unit_price": [5.0], "timestamp": [pd.Timestamp("2024-01-12")]})
    numbers = pd.concat([numbers, numbers.assign(customer_id="x", timestamp=pd.Timestamp("2024-03-01")),
                         numbers.assign(customer_id="x", timestamp=pd.Timestamp("2024-01-01"))])
    exposed = pd.DataFrame({"unit_id": [40117.0], "arm": ["control"], "exposed_at": ["2024-01-10T00:00:00+00:00"]})
    (row,) = unit_outcomes(exposed, numbers, days=14, pre_days=0).frame.to_dict("records")
    assert (row["unit_id"], row["orders"], row["revenue"]) == ("40117", 1, 5.0)
    with pytest.raises(ABDataError, match=r"column 'unit_id' is empty on rows \[1\]"):
        unit_outcomes(EXPOSURES.assign(unit_id=["c1", " ", "c3", "c4"]), frame, days=14, pre_days=28)


def test_a_restart_with_a_new_salt_is_a_new_run_of_exposures(tmp_path):
    limits_url = f"sqlite:///{tmp_path / 'limits.sqlite'}"
    first = ExperimentDesign.from_mapping("home-recs", {"arms": ["control", "treatment"], "salt": "v1"})
    second = ExperimentDesign.from_mapping("home-recs", {"arms": ["control", "treatment"], "salt": "v2"})
    units = [f"c{i}" for i in range(20)]

    async def serve(design):
        service = ExperimentService({"home-recs": design}, open_limits(limits_url, prefix="shop"))
        try:
            return [await service.assignment("home-recs", unit) for unit in units]
        finally:
            await service.limits.close()

    asyncio.run(serve(first))
    again = asyncio.run(serve(second))
    assert all(answer["first_exposure"] for answer in again)  # everyone is exposed afresh after the restart
    runner = CliRunner()
    options = ["--limits-url", limits_url, "--prefix", "shop", "--output", str(tmp_path / "e.csv")]
    both = runner.invoke(app, ["ab", "exposures", "home-recs", *options])
    assert isinstance(both.exception, ABDataError) and "several salts" in str(both.exception)
    chosen = runner.invoke(app, ["ab", "exposures", "home-recs", *options, "--salt", "v2"])
    assert chosen.exit_code == 0, chosen.output
    exported = pd.read_csv(tmp_path / "e.csv")
    assert list(exported["arm"]) == [second.assign(u) for u in units]


@pytest.mark.parametrize(("arguments", "message"), [
    (["exposures", "home-recs", "--limits-url", "http://example.com", "--output", "e.csv"],
     "unsupported online store URL 'http://example.com'"),
    (["exposures", "home-recs", "--limits-url", "sqlite:///no/such/limits.sqlite", "--output", "e.csv"],
     "no limits store at"),
    (["outcomes", "EMPTY", "--transactions", "TX", "--output", "u.csv"], "the file is empty"),
    # the output is checked before anything is read
    (["outcomes", "EMPTY", "--transactions", "TX", "--output", "."], "--output . is a folder"),
    (["outcomes", "EMPTY", "--transactions", "TX", "--output", "transactions.csv/u.csv"], "cannot make the folder"),
    (["exposures", "home-recs", "--limits-url", "http://example.com", "--output", "transactions.csv/e.csv"],
     "cannot make the folder"),
    (["analyze", "EMPTY", "--output", "transactions.csv/r.json"], "cannot make the folder"),
])
def test_bad_input_to_the_exposure_commands_ends_in_one_line(tmp_path, transactions, monkeypatch, capsys, arguments,
                                                             message):
    from experiments.cli import main

    empty = tmp_path / "exposures.csv"
    empty.write_text("")
    arguments = [str(empty) if a == "EMPTY" else str(transactions) if a == "TX" else a for a in arguments]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["recsys", "ab", *arguments])
    with pytest.raises(SystemExit) as stopped:
        main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith("error: ") and message in err.replace("\n", " ")


def test_exposures_read_the_services_store_by_its_defaults_and_name_what_is_there(tmp_path, monkeypatch):
    from feature_store.base import StoreError
    from training.event_logs import service_limits_store

    path = tmp_path / "limits.sqlite"
    design = ExperimentDesign.from_mapping("home-recs", {"arms": ["control", "treatment"]})

    async def serve():
        service = ExperimentService({"home-recs": design}, open_limits(f"sqlite:///{path}", prefix="shop"))
        try:
            await service.assignment("home-recs", "c1")
        finally:
            await service.limits.close()

    asyncio.run(serve())
    for name in ("RECSYS_SERVING_LIMITS_URL", "RECSYS_SERVING_LIMITS_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_SERVING_STORE_URL", "redis://cache:6379/2")
    monkeypatch.setenv("RECSYS_SERVING_STORE_PREFIX", "shop")
    assert service_limits_store(None, None) == ("redis://cache:6379/2", "shop")  # as the service resolves them
    monkeypatch.setenv("RECSYS_SERVING_LIMITS_URL", f"sqlite:///{path}")
    runner = CliRunner()
    output = ["--output", str(tmp_path / "e.csv")]
    found = runner.invoke(app, ["ab", "exposures", "home-recs", *output])
    assert found.exit_code == 0 and "1 units exposed to 'home-recs'" in found.output, found.output
    for arguments, error, message in [
        (["nope"], ABDataError, "no exposures to experiment 'nope'"),
        (["home-recs", "--salt", "v9"], ABDataError, "has no exposures under salt 'v9'; salts: {'home-recs': 1}"),
        (["home-recs", "--prefix", "a b"], StoreError, "limits store: "),
        (["home-recs", "--limits-url", f"sqlite:///{tmp_path / 'e.csv'}"], StoreError, "file is not a database"),
    ]:
        result = runner.invoke(app, ["ab", "exposures", *arguments, *output])
        assert isinstance(result.exception, error) and message in str(result.exception), result.output
    missing = runner.invoke(app, ["ab", "exposures", "nope", *output])
    assert "exposures there by experiment: {'home-recs': 1}" in str(missing.exception)


def test_outcomes_refuse_transactions_that_cleaning_empties(tmp_path):
    exposures = tmp_path / "exposures.csv"
    EXPOSURES.to_csv(exposures, index=False)
    returns = tmp_path / "returns.csv"
    returns.write_text(HEADER + "C1,c1,i1,2024-01-12 09:00,-1,5.0\n")
    result = CliRunner().invoke(app, ["ab", "outcomes", str(exposures), "--transactions", str(returns),
                                      "--output", str(tmp_path / "u.csv")])
    assert isinstance(result.exception, ABDataError) and "no transactions left after cleaning" in str(result.exception)


def _outcomes_of(tmp_path, exposures: pd.DataFrame, transactions: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Write both as pandas writes them (exposures as CSV, transactions as Parquet unless they are a
    path already), run ``recsys ab outcomes`` and return its table and output."""
    exposures.to_csv(tmp_path / "exposures.csv", index=False)
    transactions.to_parquet(tmp_path / "transactions.parquet", index=False)
    result = CliRunner().invoke(app, ["ab", "outcomes", str(tmp_path / "exposures.csv"), "--transactions",
                                      str(tmp_path / "transactions.parquet"), "--output", str(tmp_path / "u" / "u.csv"),
                                      "--days", "7", "--pre-days", "0"])
    assert result.exit_code == 0, result.output
    return pd.read_csv(tmp_path / "u" / "u.csv", dtype={"unit_id": str}), result.output


def _sales(customers: list) -> pd.DataFrame:
    """One order per customer on 2024-01-03; the first customer's orders before and after open and close
    the data around the windows of exposures on 2024-01-01."""
    return pd.DataFrame({"order_id": [f"o{i}" for i in range(len(customers) + 2)],
                         "customer_id": [*customers, customers[0], customers[0]], "item_id": "i1",
                         "timestamp": pd.to_datetime(["2024-01-03"] * len(customers) + ["2023-12-01", "2024-02-01"]),
                         "quantity": 1.0, "unit_price": 5.0})


def test_float_unit_ids_written_by_pandas_match_customers_of_a_float_column(tmp_path):
    # Online Retail's CustomerID is a float column: the loaders name its customers "40117"; exposures
    # written from such a column say 40117.0
    exposures = pd.DataFrame({"unit_id": [40117.0, 40288.0, 40455.0], "arm": ["control", "treatment", "control"],
                              "exposed_at": "2024-01-01T00:00:00Z"})
    table, output = _outcomes_of(tmp_path, exposures, _sales([40117.0, 40288.0, None]))
    assert table["unit_id"].tolist() == ["40117", "40288", "40455"]
    assert table["orders"].tolist() == [1, 1, 0]
    assert "1 of the 3 exposed units bought nothing in the transactions at all" in output


def test_text_unit_ids_keep_their_text(tmp_path):
    # integers written as such are ids as written, leading zeros and all; a CSV shop's "40117.0" is read
    # as "40117" on both sides, as a Parquet copy of the shop would be
    exposures = pd.DataFrame({"unit_id": ["0042", "40117"], "arm": ["control", "treatment"],
                              "exposed_at": "2024-01-01T00:00:00Z"})
    table, _ = _outcomes_of(tmp_path, exposures, _sales(["0042", "40117"]))
    assert table["unit_id"].tolist() == ["0042", "40117"] and table["orders"].tolist() == [1, 1]
    transactions = tmp_path / "shop.csv"
    _sales(["40117.0", "40288.0"]).to_csv(transactions, index=False)
    frame = clean_transactions(load_transactions(transactions)).transactions
    exposed = pd.DataFrame({"unit_id": ["40117.0", "40288.0"], "arm": ["control", "treatment"],
                            "exposed_at": "2024-01-01T00:00:00Z"})
    rows = unit_outcomes(exposed, frame, days=7, pre_days=0).frame
    assert set(frame["customer_id"]) == {"40117", "40288"}
    assert rows["unit_id"].tolist() == ["40117", "40288"] and rows["orders"].tolist() == [1, 1]


def test_exposures_that_name_no_customer_are_refused(tmp_path, monkeypatch, capsys):
    from experiments.cli import main

    # all zeros would pass for an experiment without effect; an id mismatch is far likelier
    EXPOSURES.assign(unit_id=["u1", "u2", "u3", "u4"]).to_csv(tmp_path / "exposures.csv", index=False)
    transactions = tmp_path / "transactions.csv"
    transactions.write_text(HEADER + "\n".join(LINES) + "\n")
    monkeypatch.setattr("sys.argv", ["recsys", "ab", "outcomes", str(tmp_path / "exposures.csv"), "--transactions",
                                     str(transactions), "--output", str(tmp_path / "u.csv")])
    with pytest.raises(SystemExit) as stopped:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert stopped.value.code == 2 and err.startswith("error: ")
    assert "none of the 4 exposed units is a customer of the transactions" in err and "['u1', 'u2', 'u3']" in err
    assert not (tmp_path / "u.csv").exists()
