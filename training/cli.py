"""The ``recsys`` command: thin Typer commands that call the jobs' plain functions."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recsys.data import CleaningRules
from training.models_cli import app as models_app
from training.offers_cli import app as offers_app
from training.settings import get_settings
from training.sources import FORMATS, SYNTHETIC_MIN_ITEMS, DataSource

app = typer.Typer(help="Recommendations and customer intelligence for e-commerce.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
snapshots_app = typer.Typer(help="List published snapshots, roll back, or switch to one.", no_args_is_help=True)
app.add_typer(snapshots_app, name="snapshots")
app.add_typer(offers_app, name="offers")
app.add_typer(models_app, name="models")
audiences_app = typer.Typer(help="Audience files for marketers.", no_args_is_help=True)
app.add_typer(audiences_app, name="audiences")
console = Console(soft_wrap=True)


#: A/B designs the demo serves (read by the service; a file, not an import)
EXAMPLE_EXPERIMENTS = Path(__file__).resolve().parents[1] / "serving" / "example_experiments.yaml"


def known_format(value: str) -> str:
    """A ``--format`` option's check: one of the formats the loaders read."""
    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return value


def _known_setting(value: str) -> str:
    if value not in ("A", "B"):
        raise typer.BadParameter(f"{value!r} is not a setting: A (repeats allowed) or B (new items only)")
    return value


def _date_or_none(value: str | None) -> str | None:
    import pandas as pd

    if value is not None:
        try:
            pd.Timestamp(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD): {exc}") from None
    return value


DataOpt = Annotated[str, typer.Option("--data", help="CSV/Parquet transactions file, or 'synthetic'")]
FormatOpt = Annotated[str, typer.Option("--format", help="canonical (documented schema) or online-retail",
                                        callback=known_format)]
CustomersOpt = Annotated[int, typer.Option("--customers", min=1,
                                           help="Customers of the synthetic shop (train: with --data synthetic)")]
ItemsOpt = Annotated[int, typer.Option("--items", min=SYNTHETIC_MIN_ITEMS,
                                       help="Items of the synthetic shop (train: with --data synthetic)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the synthetic generator")]
CatalogueOpt = Annotated[Path | None, typer.Option(help="Offer catalogue YAML (default RECSYS_OFFER_CATALOGUE)")]


def _store():
    from training.store import open_checked_store

    return open_checked_store(get_settings())


@app.command()
def train(
    data: DataOpt = "synthetic",
    data_format: FormatOpt = "canonical",
    customers: CustomersOpt = 5_000,
    items: ItemsOpt = 800,
    seed: SeedOpt = 0,
    cutoff: Annotated[str | None, typer.Option(help="Holdout cutoff date (default: last date - holdout days)",
                                               callback=_date_or_none)] = None,
    holdout_days: Annotated[int, typer.Option(min=1, help="Days held out for evaluation")] = 90,
    keep_non_products: Annotated[bool, typer.Option(help="Keep non-product codes (POST, M, ...)")] = False,
    publish: Annotated[bool, typer.Option(help="Publish a snapshot after training")] = True,
    customers_job: Annotated[bool, typer.Option("--customers-job/--no-customers-job",
                                                help="Also compute segments, churn and lifetime value")] = True,
    catalogue: CatalogueOpt = None,
    from_experiment: Annotated[str | None, typer.Option(
        "--from-experiment", metavar="RUN_ID",
        help="Fit, as the personal model, what this 'recsys experiment run' parent run chose on validation")] = None,
    setting: Annotated[str, typer.Option(help="With --from-experiment: the winner of setting A (repeats allowed) "
                                              "or B (new items only)", callback=_known_setting)] = "A",
) -> None:
    """Train recommendations and customer intelligence, log to MLflow, register, and publish one snapshot."""
    from training.pipeline import TrainConfig

    rules = CleaningRules(non_product_items=frozenset()) if keep_non_products else CleaningRules()
    config = TrainConfig(source=DataSource(data, data_format, customers, items, seed), cleaning=rules,
                         cutoff=cutoff, holdout_days=holdout_days)
    _run_jobs(config, customers_job, publish, catalogue,
              from_experiment=None if from_experiment is None else (from_experiment, setting))


def _run_jobs(config, customers_job: bool, publish: bool, catalogue: Path | None, run_name: str = "train",
              from_experiment: tuple[str, str] | None = None):
    from training.jobs import run_all
    from training.progress import RichReporter

    result = run_all(config, get_settings(), RichReporter(), customers=customers_job, publish=publish,
                     catalogue=catalogue, run_name=run_name, from_experiment=from_experiment)
    _print_metrics(result.train.metrics)
    registered = result.train.registered
    promoted = (f"as @{registered.alias}" if registered.alias else
                f"without an alias: serve it with `recsys models promote {registered.version}`")
    console.print(f"MLflow run [bold]{result.train.run_id}[/bold]; registered {registered.name} "
                  f"version {registered.version} {promoted}")
    if result.customers is not None:
        sizes = ", ".join(f"{s['name']} {s['size']:,}" for s in result.customers.segments if s["size"])
        console.print(f"Segments: {sizes}\nLifetime value: {result.customers.clv_status}; "
                      f"churn: {result.customers.churn_metrics.get('status')}")
    if result.manifest is not None:
        console.print(f"Published snapshot [bold]{result.manifest.snapshot_id}[/bold] {result.manifest.counts}")
    return result


@app.command("publish")
def publish_command(
    model: Annotated[str, typer.Option(help="Registry alias or version number to publish")] = "",
    catalogue: CatalogueOpt = None,
) -> None:
    """Publish a registered model version (default: the configured alias) as the current snapshot; the
    serving alias then names it."""
    from training.jobs import publish_registered
    from training.progress import RichReporter

    settings = get_settings()
    manifest, previous = publish_registered(model or settings.model_alias, catalogue or settings.offer_catalogue,
                                            settings, RichReporter())
    console.print(f"Published snapshot [bold]{manifest.snapshot_id}[/bold] {manifest.counts}")
    console.print(f"@{settings.model_alias}: {previous or 'unset'} -> version {manifest.metadata['model']['version']}",
                  highlight=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (stateless; share the store)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request")] = False,
) -> None:
    """Serve the HTTP API (settings from RECSYS_SERVING_* variables)."""
    import subprocess
    import sys

    # the serving package's own entry point, in a process of its own: training does not import serving
    command = [sys.executable, "-m", "serving", "--host", host, "--port", str(port), "--workers", str(workers),
               "--log-level", log_level] + (["--access-log"] if access_log else [])
    with subprocess.Popen(command) as server:
        try:
            code = server.wait()
        except KeyboardInterrupt:  # the server got the same Ctrl-C and is shutting down
            code = server.wait()
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    customers: CustomersOpt = 3_000,
    items: ItemsOpt = 600,
    seed: SeedOpt = 0,
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server at the end")] = True,
) -> None:
    """Generate a synthetic shop, train, publish, print example requests and serve."""
    from training.pipeline import TrainConfig

    settings = get_settings()
    if serve_after:
        _check_port_free(port)  # before training: a demo that cannot serve must not publish first
    config = TrainConfig(source=DataSource("synthetic", "canonical", customers, items, seed))
    result = _run_jobs(config, customers_job=True, publish=True, catalogue=None, run_name="demo")
    snapshot_id = result.manifest.snapshot_id
    base = f"http://127.0.0.1:{port}"
    customer = str(result.train.bundle.customers.ids[0])
    item, other_item = (str(i) for i in result.train.bundle.items.ids[:2])
    segment = next(s["name"] for s in result.customers.segments if s["size"])
    console.print(f"\n[bold]Snapshot {snapshot_id} is current.[/bold] Try, once the server is up:")
    for path in (f"/v1/customers/{customer}/recommendations?k=5", "/v1/customers/NEW-CUSTOMER/recommendations?k=5",
                 f"/v1/customers/{customer}/recommendations?k=5&exclude_purchased=true&max_per_category=2",
                 f"/v1/items/{item}/similar?k=5", f"/v1/baskets/complements?items={item}&items={other_item}&k=5",
                 "/v1/items/popular?k=5&kind=trending",
                 f"/v1/customers/{customer}/profile", f"/v1/customers/{customer}/offers?k=2",
                 "/v1/segments", f"/v1/segments/{quote(segment)}/customers?limit=5",
                 f"/v1/segments/{quote(segment)}/export.csv", f"/v1/experiments/home-recs/assignments/{customer}",
                 "/health/ready"):
        print(f"  curl -s '{base}{path}'")
    print(f"  open {base}/docs", flush=True)
    if serve_after:
        if settings.store_url and not os.environ.get("RECSYS_SERVING_STORE_URL"):
            os.environ["RECSYS_SERVING_STORE_URL"] = settings.store_url
        os.environ.setdefault("RECSYS_SERVING_STORE_PREFIX", settings.store_prefix)
        os.environ.setdefault("RECSYS_SERVING_EXPERIMENTS_PATH", str(EXAMPLE_EXPERIMENTS))
        serve(port=port)


def _check_port_free(port: int, host: str = "127.0.0.1") -> None:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise typer.BadParameter(f"cannot serve on {host}:{port} ({exc.strerror}); pass another --port",
                                     param_hint="--port") from None


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="Output .parquet or .csv file")],
    customers: CustomersOpt = 5_000,
    items: ItemsOpt = 800,
    seed: SeedOpt = 0,
) -> None:
    """Write a synthetic transactions file in the documented schema; one seed gives the same bytes."""
    import zipfile

    from recsys.data import generate_transactions
    from recsys.data.loaders import is_csv_file

    writes_csv = is_csv_file(out)  # the names the loaders read back: .csv, .CSV, .csv.gz, ..., .parquet
    frame = generate_transactions(n_customers=customers, n_items=items, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    # gzip and zip store a write time by default, which would make two runs' files differ.
    if suffix == ".zip":
        member = zipfile.ZipInfo(out.name[: -len(suffix)], date_time=(1980, 1, 1, 0, 0, 0))
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, frame.to_csv(index=False), compress_type=zipfile.ZIP_DEFLATED)
    elif writes_csv:
        compression = {"method": "gzip", "mtime": 0} if suffix == ".gz" else "infer"
        frame.to_csv(out, index=False, compression=compression)  # bz2 and xz store no time
    else:
        frame.to_parquet(out, index=False)
    console.print(f"Wrote {len(frame):,} rows for {customers:,} customers to {escape(str(out))}")


@audiences_app.command("lookalike")
def audiences_lookalike(
    data: DataOpt,
    seeds: Annotated[Path, typer.Option(help="CSV or Parquet with a customer_id column: the seed audience "
                                             "(a segment's export.csv, say)")],
    output: Annotated[Path, typer.Option(help="CSV to write: customer_id, rank, seed_share, seed_neighbours")],
    data_format: FormatOpt = "canonical",
    size: Annotated[int, typer.Option(min=1, help="Customers in the audience, at most")] = 1000,
    neighbours: Annotated[int, typer.Option(min=1, help="Nearest customers each customer is compared with")] = 50,
) -> None:
    """The customers most like a seed audience by what they bought, seeds left out, as a CSV file."""
    from training.audiences import lookalike_audience, read_seed_ids

    seed_ids = read_seed_ids(seeds)
    result = lookalike_audience(DataSource(data, data_format), CleaningRules(), seed_ids, size, neighbours)
    output.parent.mkdir(parents=True, exist_ok=True)
    result.audience.to_csv(output, index=False)
    console.print(f"{result.seeds_found:,} of {len(seed_ids):,} seed customers bought something in the data", end="")
    if result.seeds_unknown:
        console.print(f"; without purchases, left out: {escape(', '.join(result.seeds_unknown[:5]))}"
                      + (", ..." if len(result.seeds_unknown) > 5 else ""), end="")
    console.print(f"\n{result.reachable:,} other customers have a seed among their {neighbours} nearest; "
                  f"wrote the {len(result.audience):,} most alike to {escape(str(output))}")


@snapshots_app.command("list")
def snapshots_list() -> None:
    """Retained snapshots, newest first; the current one is marked."""
    store = _store()
    try:
        current = store.current_snapshot_id()
        table = Table("")
        table.add_column("snapshot", no_wrap=True, min_width=28)
        for column in ("created", "model", "counts"):
            table.add_column(column, overflow="fold")  # folded onto more lines, never cut short
        for manifest in store.list_snapshots():
            table.add_row("*" if manifest.snapshot_id == current else "", manifest.snapshot_id,
                          manifest.created_at, _model_label(manifest.metadata.get("model")),
                          ", ".join(f"{k}={v:,}" for k, v in manifest.counts.items()))
        console.print(table)
    finally:
        store.close()


@snapshots_app.command("rollback")
def snapshots_rollback() -> None:
    """Make the previous retained snapshot current."""
    store = _store()
    try:
        manifest = store.rollback()
    finally:
        store.close()
    console.print(f"Current snapshot is now [bold]{manifest.snapshot_id}[/bold]")
    _alias_follows(manifest)


@snapshots_app.command("use")
def snapshots_use(snapshot_id: Annotated[str, typer.Argument(help="A retained snapshot id")]) -> None:
    """Make a retained snapshot current (roll forward or back)."""
    store = _store()
    try:
        manifest = store.set_current(snapshot_id)
    finally:
        store.close()
    console.print(f"Current snapshot is now [bold]{manifest.snapshot_id}[/bold]")
    _alias_follows(manifest)


def _alias_follows(manifest) -> None:
    """Point the serving alias at the version the now-current snapshot serves, so that the registry and
    the answers name the same one. A registry that fails only gets a warning: a rollback is for when
    something is wrong, and must not wait for MLflow."""
    from training import tracking

    settings = get_settings()
    model = manifest.metadata.get("model")
    if not isinstance(model, dict) or model.get("name") != settings.registered_model or not model.get("version"):
        return  # published by another tool, or another registered model: nothing to follow
    version, alias = str(model["version"]), settings.model_alias
    try:
        tracking.configure_tracking(settings)
        with tracking.answering_quickly():
            previous = tracking.set_alias(settings.registered_model, alias, version)
    except Exception as exc:  # any registry failure: the switch above stands
        console.print(f"warning: @{alias} still names the version it did; point it at version {version} with "
                      f"`recsys models promote {version} --no-publish` once the registry answers ({exc})",
                      highlight=False)
        return
    console.print(f"@{alias}: {previous or 'unset'} -> version {version}", highlight=False)


def _model_label(model: Any) -> str:
    # what recsys publishes is {"name", "version", ...}; metadata written by other tools may be anything
    if isinstance(model, dict):
        return f"{model.get('name', '?')} v{model.get('version', '?')}"
    return "?" if model is None else str(model)


def _print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    if not metrics:
        return
    names = {"ndcg@10": "nDCG@10", "precision@10": "P@10", "recall@10": "R@10", "recall@20": "R@20",
             "map@10": "MAP@10", "coverage@10": "cov@10"}
    table = Table("role", "items", *names.values(), title="Temporal holdout (new items: bought ones excluded)")
    for name, values in metrics.items():
        role, _, variant = name.partition(".")
        table.add_row(role, "new" if variant else "all", *(f"{values.get(n, float('nan')):.4f}" for n in names))
    console.print(table)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
