"""The end of a search: the derived genotype, its files and the result returned (the running
:class:`~robustnas.search.searcher.Searcher` is ``self``)."""

from __future__ import annotations

from typing import Any

from robustnas.search.export import export_genotype, provenance
from robustnas.search.result import SearchResult
from robustnas.space.spaces import space_of_genotype


def finish_search(self: Any, stopped_early: str | None) -> SearchResult:
    """Derive the final genotype with its provenance, write it (rank 0) and the table
    lookup, and return the result."""
    config = self.config
    genotype = self.model.genotype(provenance(
        self.model, dataset=config.dataset, regularizer=self.regularizers.describe(),
        seed=config.seed, epoch=self.epoch, order=config.order,
        stopped_early=stopped_early, world_size=self.dist.world_size))
    self.log.close()
    path = self.run_dir / "genotype.json"
    if not self.dist.is_main:
        return SearchResult(self.run_dir, genotype, path, [], self.epoch, self.history,
                            stopped_early, rank=self.dist.rank)
    written = export_genotype(genotype, path)
    if config.bench_root and space_of_genotype(genotype).benches:
        from robustnas.tables.lookup import write_search_lookup

        write_search_lookup(genotype, config, self.run_dir)
    return SearchResult(self.run_dir, genotype, written["genotype"], written["pictures"],
                        self.epoch, self.history, stopped_early)
