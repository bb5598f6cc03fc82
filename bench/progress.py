"""Progress lines for a long benchmark: every step says what it is doing, and a wait says how it is
getting on at least every `STATUS_EVERY` seconds."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STATUS_EVERY = 15.0


@dataclass
class Progress:
    label: str = ""
    began: float = field(default_factory=time.monotonic)

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.began
        minutes, seconds = divmod(elapsed, 60)
        prefix = f"[{int(minutes):3d}:{seconds:04.1f}]" + (f" [{self.label}]" if self.label else "")
        print(f"{prefix} {message}", file=sys.stdout, flush=True)

    def for_config(self, label: str) -> Progress:
        return Progress(label=label, began=self.began)


def wait_until(check: Callable[[], tuple[bool, str]], *, deadline: float, say: Progress, what: str,
               interval: float = 1.0) -> tuple[bool, float]:
    """Poll `check` (done?, a line on how it stands) until done or `deadline` (monotonic); print
    how it stands every `STATUS_EVERY` s. Returns whether it finished and the seconds waited."""
    began = time.monotonic()
    shown = began
    while True:
        done, status = check()
        now = time.monotonic()
        if done:
            return True, now - began
        if now >= deadline:
            say(f"{what}: cap reached after {now - began:.0f} s ({status})")
            return False, now - began
        if now - shown >= STATUS_EVERY:
            shown = now
            say(f"{what}: {now - began:.0f} s ({status})")
        time.sleep(min(interval, max(0.0, deadline - now)))
