"""The offer catalogue as part of a snapshot: validated before publishing, so serving only ever sees
a catalogue that passed, and a rejected one leaves the previous snapshot (and its catalogue) current."""

from __future__ import annotations

from pathlib import Path

from feature_store import SnapshotWriter
from recsys.offers import CATALOGUE_KEY, OFFERS_NAMESPACE, Catalogue, load_catalogue
from training.publish import SnapshotPart


def offer_catalogue_part(catalogue: Catalogue) -> SnapshotPart:
    """Write the catalogue into the ``offers`` namespace; its version goes into the manifest."""

    def write(writer: SnapshotWriter) -> dict[str, str]:
        writer.write(OFFERS_NAMESPACE, [CATALOGUE_KEY], [catalogue.to_bytes()])
        return {"offer_catalogue_version": catalogue.version}

    return write


def offer_catalogue_part_from_file(path: str | Path) -> SnapshotPart:
    """Validate the file now (raising :class:`recsys.offers.CatalogueError`), before any snapshot begins."""
    try:
        return offer_catalogue_part(load_catalogue(path))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"offer catalogue {path} (--catalogue, or RECSYS_OFFER_CATALOGUE) does not exist") from None
