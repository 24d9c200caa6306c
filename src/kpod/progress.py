"""Progress bars for long work: one place to configure tqdm for every stage."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             **kwargs) -> tqdm:
    """A tqdm bar with rate and ETA on stderr. KPOD_NO_PROGRESS=1 silences it (tests, CI logs)."""
    disable = os.environ.get("KPOD_NO_PROGRESS") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr,
                disable=disable, mininterval=0.5, **kwargs)
