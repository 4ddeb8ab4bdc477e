"""Which package an fsspec protocol needs, and which extra of this target brings it.

fsspec finds some drivers missing only when a file system is first opened (`hdfs://`
imports pyarrow then), which would be a traceback when the first stream starts. Asking
here at start-up turns that into one line with the `pip install` that fixes it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re

from fsspec.registry import known_implementations

DISTRIBUTION = "target-restapi"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*).*;\s*extra\s*==\s*['\"]([^'\"]+)")


@functools.cache
def extras() -> dict[str, str]:
    """Package name to the extra that brings it, from this target's installed metadata."""
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return {}
    found = (_REQUIREMENT.match(line) for line in requirements)
    return {m[1].lower(): m[2] for m in found if m}


def missing_package(protocol: str) -> tuple[str, str] | None:
    """(package, extra) when `protocol` needs a package of an extra that is not installed.

    The package is the one fsspec's registry names for the protocol: the module of its
    class (`s3fs.S3FileSystem`), or one named in its error text (pyarrow for `hdfs`).
    """
    known = known_implementations.get(protocol) or {}
    owner = str(known.get("class", "")).partition(".")[0]
    hint = str(known.get("err", ""))
    for package, extra in extras().items():
        needed = package == owner or re.search(rf"\b{re.escape(package)}\b", hint)
        if needed and importlib.util.find_spec(package) is None:
            return package, extra
    return None
