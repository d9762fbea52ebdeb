"""Progress bars for the long commands, on a terminal only.

``fixgw log replay|export|import`` and the benches read or write up to millions of records;
on a terminal a bar on standard error says how far they are. Nothing is drawn when standard
error is not a terminal (a pipe, a file, a test) or when the command prints ``--json``, so
machine-readable output never carries progress noise.

rich (``rich.progress``) rather than tqdm: amqtt, a dependency already, installs rich (through
typer), so the bars add nothing to set up; it is imported only when a bar is drawn (~60 ms).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Tick = Callable[[int], None]
"""Advance the bar by this many units."""


def _ignore(_n: int) -> None:
    return None


def wanted(*, json_output: bool = False, stream: TextIO | None = None) -> bool:
    """Whether to draw: the output is for people and standard error is a terminal."""
    out = sys.stderr if stream is None else stream
    if json_output:
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def _same_terminal(out: TextIO) -> bool:
    # What the command prints while a bar is drawn goes above the bar only when it goes to the
    # same terminal anyway; standard output sent to a pipe or a file is left alone.
    return out is sys.stderr and sys.stdout.isatty()


@contextmanager
def progress_bar(total: int | None, description: str, *, unit: str = "records",
                 json_output: bool = False, stream: TextIO | None = None) -> Iterator[Tick]:
    """``with progress_bar(n, "replay") as tick: ... tick(k)``: a bar on a terminal, else nothing."""
    out = sys.stderr if stream is None else stream
    if not wanted(json_output=json_output, stream=out):
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(file=out), transient=False,
                  redirect_stdout=_same_terminal(out), redirect_stderr=False) as bar:
        task = bar.add_task(description, total=total)

        def tick(n: int) -> None:
            bar.advance(task, n)

        yield tick


@contextmanager
def working(description: str, *, json_output: bool = False, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with the elapsed time while a long step whose size is not known runs (the
    benches bounded by time); on a terminal only, and gone once the step ends."""
    out = sys.stderr if stream is None else stream
    if not wanted(json_output=json_output, stream=out):
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(file=out), transient=True,
                  redirect_stdout=_same_terminal(out), redirect_stderr=False) as bar:
        bar.add_task(description, total=None)
        yield
