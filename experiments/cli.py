"""``recsys experiment run CONFIG``, ``recsys ab ...``, and the ``recsys`` command with every training
command beside them.

Training may not import experiments, so the console command lives here: ``app`` is the training app
with the ``experiment`` group added, and :func:`main` (the entry point) runs it.
"""

from __future__ import annotations

from recsys.numerics import pin_blas_kernel

# First, before anything loads numpy: OpenBLAS reads its kernel choice once, when it is loaded.
pin_blas_kernel()

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from experiments.ab.cli import ab_app  # noqa: E402
from training.cli import app  # noqa: E402
from training.progress import print_error  # noqa: E402

experiment_app = typer.Typer(help="Offline experiments: tune on validation, score once on test, log to MLflow.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")
app.add_typer(ab_app, name="ab")
console = Console()


@experiment_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML); see experiments/configs/")],
    data: Annotated[Path | None, typer.Option(help="Run on this transactions file instead of the config's")] = None,
    data_format: Annotated[str | None, typer.Option("--format", help="canonical or online-retail, with --data")] = None,
    output: Annotated[Path | None, typer.Option(help="Also keep the table, curves and plots in this folder")] = None,
) -> None:
    """Run a config under one MLflow parent run; print the comparison table and one RESULT line per setting."""
    from experiments.config import ConfigError, load_config
    from experiments.runner import run_experiment, to_markdown
    from training.settings import get_settings

    try:
        parsed = load_config(config, data=data, data_format=data_format)
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    start = time.perf_counter()
    result = run_experiment(parsed, get_settings(), report=_print, config_text=config.read_text(), output_dir=output)
    print(to_markdown(result.table), end="")
    console.print(f"MLflow parent run [bold]{result.run_id}[/bold] (experiment {parsed.experiment}); "
                  f"{time.perf_counter() - start:.1f}s", soft_wrap=True)
    for line in result.result_lines:
        print(line)


def _print(line: str) -> None:
    console.print(escape(line), highlight=False, soft_wrap=True)


def main() -> None:
    """The console command. An error in what it was given (a missing or malformed file, a bad catalogue
    or config, data too thin to fit, an unreachable store) ends in one line naming it and exit status 2;
    a page of traceback would bury that line. ``--verbose`` shows the traceback as well."""
    try:
        app()
    except Exception as exc:
        # the error types are imported only once something failed: they pull in the models, and a
        # plain `recsys --help` should not wait for those
        if not isinstance(exc, _input_errors()) or {"-v", "--verbose"} & set(sys.argv[1:]):
            raise
        # notes say what the failure left behind (a version registered but not served, say)
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))
        print_error(f"{exc}{notes}")
        raise SystemExit(2) from None


def _input_errors() -> tuple[type[Exception], ...]:
    from experiments.ab.assignment import DesignError
    from experiments.ab.report import ABDataError
    from experiments.config import ConfigError
    from experiments.outputs import OutputError
    from training.errors import input_errors

    return (*input_errors(), ConfigError, ABDataError, DesignError, OutputError)
