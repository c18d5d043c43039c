"""``recsys offers``: check a catalogue file, and count eligible customers per offer on the current snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from feature_store import OnlineStore
from recsys.offers import (
    CATALOGUE_KEY,
    OFFERS_NAMESPACE,
    Catalogue,
    CatalogueError,
    count_eligible_records,
    load_catalogue,
    needs_recommendations,
)
from recsys.records import PROFILES, RECOMMENDATIONS
from training.progress import print_error

app = typer.Typer(help="Offer catalogue: validate a file, preview eligible customers per offer.", no_args_is_help=True)
console = Console()

CatalogueArg = Annotated[Path, typer.Argument(help="Offer catalogue YAML", exists=True, dir_okay=False)]


@dataclass(frozen=True)
class Preview:
    snapshot_id: str
    catalogue: Catalogue
    customers: int
    eligible: dict[str, int]


class NothingToPreviewError(LookupError):
    """No current snapshot, or it has no profiles, or no catalogue was given or published."""


def preview_eligible(store: OnlineStore, catalogue: Catalogue | None = None,
                     now: datetime | None = None) -> Preview:
    """Eligible customers per offer among the current snapshot's profiles; the snapshot's own catalogue
    unless another (e.g. a draft) is given."""
    manifest = store.current_manifest()
    if manifest is None:
        raise NothingToPreviewError("no snapshot is current: publish one first")
    if not manifest.counts.get(PROFILES):
        raise NothingToPreviewError(f"snapshot {manifest.snapshot_id} holds no customer profiles")
    if catalogue is None:
        raw = store.get(manifest.snapshot_id, OFFERS_NAMESPACE, CATALOGUE_KEY)
        if raw is None:
            raise NothingToPreviewError(f"snapshot {manifest.snapshot_id} holds no offer catalogue: pass --catalogue")
        catalogue = Catalogue.from_bytes(raw)
    now = now or datetime.now(UTC)
    eligible = dict.fromkeys((o.id for o in catalogue.offers), 0)
    customers = 0
    for batch in store.iter_namespace(manifest.snapshot_id, PROFILES):
        customers += len(batch)
        # a bundle needs the customer's top recommendation
        records = store.get_many(manifest.snapshot_id, RECOMMENDATIONS, [key for key, _ in batch]) \
            if needs_recommendations(catalogue) else None
        for offer_id, n in count_eligible_records(catalogue, batch, now, records).items():
            eligible[offer_id] += n
    return Preview(manifest.snapshot_id, catalogue, customers, eligible)


def _error(exc: Exception) -> None:
    print_error(str(exc))


@app.command()
def validate(path: CatalogueArg) -> None:
    """Validate a catalogue file and print its version; exit 1 listing every problem (offer id and field)."""
    try:
        catalogue = load_catalogue(path)
    except CatalogueError as exc:
        _error(exc)
        raise typer.Exit(1) from exc
    console.print(f"{escape(str(path))}: {len(catalogue.offers)} offers, version [bold]{catalogue.version}[/bold]")


@app.command()
def preview(
    catalogue: Annotated[Path | None, typer.Option(help="Preview this catalogue file instead of the published one",
                                                   exists=True, dir_okay=False)] = None,
) -> None:
    """Count the current snapshot's customers eligible for each offer."""
    from training.cli import _store

    try:
        draft = load_catalogue(catalogue) if catalogue is not None else None
    except CatalogueError as exc:
        _error(exc)
        raise typer.Exit(1) from exc
    store = _store()
    try:
        result = preview_eligible(store, draft)
    except NothingToPreviewError as exc:
        _error(exc)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    table = Table(title=f"Snapshot {result.snapshot_id}, catalogue {result.catalogue.version}, "
                        f"{result.customers:,} customers")
    for column in ("offer", "type", "eligible customers", "share", "redemption limit", "impression limit"):
        # ids are what an operator copies: folded onto a second line, never cut short
        table.add_column(column, justify="right" if column not in ("offer", "type") else "left",
                         overflow="fold", min_width=len(column) if column == "offer" else None)
    for offer in result.catalogue.offers:
        n = result.eligible[offer.id]
        limits = ["-" if limit is None else f"{limit:,}" for limit in (offer.redemption_limit, offer.impression_limit)]
        table.add_row(offer.id, offer.type.value, f"{n:,}", f"{n / max(result.customers, 1):.1%}", *limits)
    console.print(table)
