"""Progress reporting for long steps: a rich progress bar on a terminal, silence in tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger("recsys.training")


def print_error(message: str) -> None:
    """One ``error:`` line on stderr, the message verbatim: a file named sales[eu].csv is not markup."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


class Reporter:
    """Logs each step's duration; subclasses draw it."""

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        log.info("%s done in %.2fs", description, time.perf_counter() - started)

    def note(self, message: str) -> None:
        """A finding worth the user's eye, such as how many rows cleaning dropped and why."""
        log.info("%s", message)

    @contextmanager
    def counting(self, description: str, total: int) -> Iterator[callable]:
        """Yields ``advance(n)`` for steps with a known amount of work."""
        with self.step(description):
            yield lambda n=1: None


class RichReporter(Reporter):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        started = time.perf_counter()
        with self.console.status(description):
            yield
        self.console.print(f"[green]✓[/green] {escape(description)} [dim]({time.perf_counter() - started:.1f}s)[/dim]")

    def note(self, message: str) -> None:
        self.console.print(f"  {escape(message)}", style="dim", highlight=False)

    @contextmanager
    def counting(self, description: str, total: int) -> Iterator[callable]:
        started = time.perf_counter()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)
        self.console.print(f"[green]✓[/green] {escape(description)} [dim]({time.perf_counter() - started:.1f}s)[/dim]")
