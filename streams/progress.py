"""How far long work has got, in words: the estimate a job card shows beside its bar, and the
line the operations commands rewrite on a terminal while they run (verify_audit,
prune_audit). Pure but for that line's writing."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol, Self


def seconds_left(done: int, total: int, elapsed: float) -> float | None:
    """At the pace so far; None before there is one."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0, total - done) * elapsed / done


def time_left(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    if seconds < 1:
        return "less than a second left"
    if seconds < 60:
        return f"about {round(seconds)} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min left"


class Terminal(Protocol):
    """What a management command's stderr (django's OutputWrapper) offers."""

    def isatty(self) -> bool: ...

    def write(self, msg: str = "", style_func: object = None,
              ending: str | None = None) -> None: ...

    def flush(self) -> None: ...


class TerminalLine:
    """One line rewritten in place (\\r) while work goes on: "verified 120,000 of 1,000,000
    entries (12%), about 40 s left". Only on a terminal: a cron job's log or a test's captured
    output gets nothing from it. Cleared on leaving its `with`, so what the command prints next
    (its outcome, or an error) starts on a clean line."""

    def __init__(self, out: Terminal, verb: str, noun: str = "entries") -> None:
        self.out, self.verb, self.noun = out, verb, noun
        self.shown = out.isatty()
        self.started = time.monotonic()
        self.width = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.shown and self.width:
            self._write(f"\r{' ' * self.width}\r")

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        text = f"{self.verb} {done:,} of {total:,} {self.noun}"
        if done < total:
            text += (f" ({done * 100 // total}%), "
                     + time_left(seconds_left(done, total, time.monotonic() - self.started)))
        # Blanks cover the end of a longer line before it.
        self._write(f"\r{text.ljust(self.width)}")
        self.width = len(text)

    def _write(self, text: str) -> None:
        self.out.write(text, style_func=lambda text: text, ending="")  # uncoloured, no newline
        self.out.flush()
