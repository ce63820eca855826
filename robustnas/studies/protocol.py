"""A trial's protocol: everything that changes its result, and its fingerprint.

A study table must not mix trials trained or evaluated differently. Every trial therefore
carries the fingerprint of its protocol (user attribute ``protocol``, and the same in its
``result.json``): the study's ``training`` and ``evaluation`` settings, the architecture
record with its own ``set`` options, the *content* of every genotype file it reads (not
the path: a study directory may move), for a searched cell the search job's settings, and
:data:`RESULT_FORMAT`, the version of what a trial records. Seeds are part of the trial's
key, not of its protocol. The study keeps the readable documents too (user attribute
``protocol_doc``), so a changed file can be refused naming the changed keys
(``training.epochs: 2 -> 1``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: Version of the trial record (``result.json``); a change means old results are of
#: another protocol. 2: the record carries its protocol fingerprint.
RESULT_FORMAT = 2


def fingerprint(doc: Any) -> str:
    """A short stable hash of a JSON-ready document."""
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(spec: str) -> str | None:
    """The content hash of a genotype file (``None`` for a name or a missing file)."""
    path = Path(spec)
    if not spec or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def search_doc(config: dict[str, Any]) -> dict[str, Any]:
    """The protocol of one search job (its resolved settings, output folder left out)."""
    return {"format": RESULT_FORMAT,
            "search": {k: v for k, v in sorted(config.items()) if k != "out"}}


def architecture_doc(arch: Any, search_protocols: dict[str, str]) -> dict[str, Any]:
    """An architecture's part of a protocol: its record with file paths replaced by the
    files' content (a searched cell by the protocol of the search that derives it)."""
    record = arch.to_attrs()
    record.pop("label", None)
    if arch.kind == "search":
        record["spec"] = {"search": search_protocols.get(arch.label)}
    else:
        digest = file_digest(arch.spec)
        if digest is not None:
            record["spec"] = {"file": digest}
    record["members"] = [{"file": file_digest(m)} if file_digest(m) else m
                         for m in arch.members]
    return record


def training_doc(training: dict[str, Any], evaluation: dict[str, Any],
                 architecture: dict[str, Any]) -> dict[str, Any]:
    """The protocol of a training trial."""
    return {"format": RESULT_FORMAT, "training": dict(sorted(training.items())),
            "evaluation": dict(sorted(evaluation.items())), "architecture": architecture}


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` of a nested mapping (lists are leaves)."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 4) -> list[str]:
    """Readable changes between two protocol documents: ``training.epochs: 2 -> 1``."""
    a, b = flatten(old), flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in a and key in b and a[key] == b[key]:
            continue
        before = json.dumps(a[key], default=str) if key in a else "(unset)"
        after = json.dumps(b[key], default=str) if key in b else "(unset)"
        lines.append(f"{key}: {before} -> {after}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"and {len(lines) - limit} more"]
    return lines
