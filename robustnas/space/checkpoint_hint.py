"""A checkpoint given where a genotype is expected: say what it is and what to run instead."""

from __future__ import annotations

from pathlib import Path

from robustnas.errors import GenotypeError

# torch.save writes a zip archive (default since PyTorch 1.6) or a raw pickle (protocol 2+).
_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def looks_like_checkpoint(path: str | Path) -> bool:
    """True when ``path`` starts like a file written by ``torch.save``."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(_MAGICS)


def refuse_checkpoint(path: str | Path) -> None:
    """Raise :class:`GenotypeError` naming the right command when ``path`` is a checkpoint."""
    if not looks_like_checkpoint(path):
        return
    kind = _checkpoint_kind(path)
    if kind == "robustnas-search-checkpoint":
        raise GenotypeError(f"{path} is a search checkpoint, not a genotype: derive its "
                            f"genotype first with `robustnas derive {path} -o genotype.json`, "
                            f"then retrain genotype.json")
    if kind == "robustnas-retrain-checkpoint":
        raise GenotypeError(f"{path} is a trained network's checkpoint, not a genotype: "
                            f"evaluate it with `robustnas evaluate {path}`, continue it with "
                            f"`robustnas retrain --resume {path}`, or give its run's "
                            f"genotype.json")
    raise GenotypeError(f"{path} is a PyTorch checkpoint, not a genotype JSON file; for a "
                        f"search checkpoint run `robustnas derive {path} -o genotype.json`")


def _checkpoint_kind(path: str | Path) -> str | None:
    """The ``format`` tag of a robustnas checkpoint (None when it cannot be read)."""
    from robustnas.errors import RobustnasError
    from robustnas.io import load_checkpoint

    try:
        state = load_checkpoint(path)
    except RobustnasError:  # unreadable: just "a checkpoint"
        return None
    return state.get("format") if isinstance(state, dict) else None
