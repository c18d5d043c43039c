"""``recsys models``: the registered recommendation bundles, and the promotion of one by registry alias."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Registered model versions: compare them, promote one by alias.", no_args_is_help=True)
console = Console()

#: holdout metrics shown per version: (column, metric key under "holdout.")
SHOWN_METRICS = (("nDCG@10", "personal.ndcg_at_10"), ("R@20", "personal.recall_at_20"),
                 ("new-item nDCG@10", "personal.new_items.ndcg_at_10"))


@app.command("list")
def list_command() -> None:
    """Every registered version, newest first: its aliases, its personal model (and the experiment run that
    chose it), and its training run's holdout figures."""
    from training import tracking
    from training.settings import get_settings

    settings = get_settings()
    tracking.configure_tracking(settings)
    # plain lines rather than a table: they stay whole in a log or a narrow terminal
    console.print(f"registered model {settings.registered_model!r}, served alias @{settings.model_alias}; "
                  "holdout figures of each version's training run:", highlight=False, soft_wrap=True)
    for version in tracking.list_versions(settings.registered_model):
        figures = "  ".join(f"{label} {version.metrics[key]:.4f}" if key in version.metrics else f"{label} -"
                            for label, key in SHOWN_METRICS)
        aliases = " ".join(f"@{alias}" for alias in version.aliases) or "-"
        chosen = (f"  chosen by experiment run {version.experiment_run_id[:12]} (setting {version.experiment_setting})"
                  if version.experiment_run_id else "")
        console.print(f"version {version.version:<4} {aliases:<22} {version.created:%Y-%m-%d %H:%M} UTC  "
                      f"run {version.run_id[:12]}  model {version.model or '-'}  {figures}{chosen}",
                      highlight=False, soft_wrap=True)


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="Registered version number")],
    alias: Annotated[str | None, typer.Option(
        help="Alias to move (default RECSYS_MODEL_ALIAS, the served one)")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish/--no-publish", help="Publish it as the current snapshot when the alias is the served one")] = True,
    catalogue: Annotated[Path | None, typer.Option(
        help="Offer catalogue YAML (default RECSYS_OFFER_CATALOGUE)")] = None,
) -> None:
    """Point an alias at VERSION; for the served alias, also publish it, so that it is what is served."""
    from training import tracking
    from training.settings import get_settings

    settings = get_settings()
    alias = tracking.check_alias(alias or settings.model_alias, "--alias" if alias else "RECSYS_MODEL_ALIAS")
    tracking.configure_tracking(settings)
    if not version.isdigit():
        raise tracking.UnknownModelVersionError(f"give a version number to promote, got {version!r}")
    manifest = None
    if publish and alias == settings.model_alias:
        from training.jobs import publish_registered
        from training.progress import RichReporter

        manifest, previous = publish_registered(version, catalogue or settings.offer_catalogue, settings,
                                                RichReporter())
    else:
        previous = tracking.set_alias(settings.registered_model, alias, version)
    console.print(f"@{alias}: {previous or 'unset'} -> version {version}", highlight=False)
    if manifest is not None:
        console.print(f"Published snapshot [bold]{manifest.snapshot_id}[/bold] {manifest.counts}")
