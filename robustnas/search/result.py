"""What a finished search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SearchResult:
    """What a finished search leaves behind."""

    run_dir: Path
    genotype: Any
    genotype_path: Path
    pictures: list[Path]
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: str | None = None
    rank: int = 0  #: this process's rank under torchrun (only rank 0 wrote the files)

    @property
    def decisiveness(self) -> dict[str, Any] | None:
        """How clearly α chose the cell: the genotype's provenance record (verdict
        ``uniform``/``weak``/``clear``, margins, entropy; :mod:`robustnas.space.decisiveness`),
        None for a genotype that has none."""
        record = self.genotype.provenance.get("decisiveness")
        return dict(record) if record else None

    @property
    def decisiveness_warning(self) -> str | None:
        """The "its operations are noise" sentence when the verdict is ``uniform``."""
        from robustnas.space.decisiveness import describe

        record = self.decisiveness
        return describe(record)[1] if record else None
