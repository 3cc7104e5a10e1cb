"""The one table of reference schemes (`job:`, ...): which keys take each one and who resolves it.

A scheme resolver gets the text after `<scheme>:` and returns the path the trainer reads, or
raises `Invalid` naming the key. A tenant resource that belongs to another tenant must be refused
with the same words as one that does not exist. Add a scheme by adding its entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from trainforge.datasets import resolve as uploads
from trainforge.references import jobs
from trainforge.references.context import Context

# Lower-case letters first, as in URIs; an absolute path or a Windows drive never matches.
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")


@dataclass(frozen=True)
class Scheme:
    """How the values `<name>:<rest>` of some override keys are resolved."""

    keys: frozenset[str]
    resolve: Callable[[Context, str, str], str]  # (context, key, rest) -> the path the trainer reads
    usage: str  # how to write it, for error messages


SCHEMES: dict[str, Scheme] = {
    "job": Scheme(
        keys=frozenset({"model", "pretrained"}),
        resolve=jobs.resolve_job_checkpoint,
        usage="job:<id>/best.pt or job:<id>/last.pt (a checkpoint of one of your jobs)",
    ),
    "dataset": Scheme(
        keys=frozenset({"data"}),
        resolve=uploads.dataset_reference,
        usage="dataset:<name>[@<version>] (one of your uploaded datasets)",
    ),
    "model": Scheme(
        keys=frozenset({"model", "pretrained"}),
        resolve=uploads.model_reference,
        usage="model:<name>[@<version>] (one of your uploaded models)",
    ),
}


def scheme_of(value: str) -> str | None:
    """Return the scheme `value` starts with (`job` of `job:...`), or None."""
    match = _SCHEME.match(value)
    return match.group(1) if match else None
