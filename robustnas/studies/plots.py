"""Figures of a study report: clean vs robust accuracy (Pareto front) and accuracy vs ε."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas.viz._render import figure_array, new_figure, write_figure

# marker and colour per architecture kind; ensembles stand out as large stars
_STYLE = {"arch": ("o", "tab:blue", "named / hand-crafted"),
          "search": ("s", "tab:green", "searched"),
          "random": (".", "tab:gray", "random cell"),
          "sampled": ("x", "tab:purple", "Optuna-sampled"),
          "ensemble": ("*", "tab:red", "ensemble")}


def chance_level(report: Any) -> float | None:
    """Accuracy (%) of guessing, 100 / classes, when every trial recorded the same number of
    classes (trials of studies made before it was recorded have none: no line then)."""
    classes = {t.get("classes") for t in report.trials}
    if len(classes) != 1 or not isinstance(next(iter(classes)), int):
        return None
    return 100.0 / next(iter(classes))


def _chance_lines(ax: Any, chance: float | None, vertical: bool = False) -> None:
    """Dotted chance-level line(s): an accuracy at this level means nothing was learnt."""
    if chance is None:
        return
    style = dict(color="tab:red", linestyle=":", linewidth=1.0, alpha=0.8)
    ax.axhline(chance, label=f"chance ({chance:.3g}%)", **style)
    if vertical:
        ax.axvline(chance, **style)


def pareto_figure(report: Any) -> Any:
    """Clean vs worst-case robust accuracy (means ± sd), Pareto front as a step line."""
    fig = new_figure(7.0, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    seen = set()
    for row in report.rows:
        c, r = row["clean"], row["robust"]
        if c["mean"] is None or r["mean"] is None:
            continue
        marker, colour, name = _STYLE.get(row["kind"], ("o", "black", row["kind"]))
        ax.errorbar(c["mean"], r["mean"], xerr=c["sd"] or 0, yerr=r["sd"] or 0, fmt=marker,
                    color=colour, markersize=14 if row["kind"] == "ensemble" else 7,
                    capsize=2, elinewidth=0.8, label=None if name in seen else name)
        seen.add(name)
        if row["kind"] not in ("random", "sampled") or row.get("pareto"):
            ax.annotate(row["label"], (c["mean"], r["mean"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    front = sorted((row["clean"]["mean"], row["robust"]["mean"]) for row in report.rows
                   if row.get("pareto"))
    if front:
        xs, ys = zip(*front)
        ax.step(xs, ys, where="post", color="black", linewidth=1, alpha=0.6,
                label="Pareto front")
    _chance_lines(ax, chance_level(report), vertical=True)
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(f"robust accuracy (%), worst case at ε = {report.objective_eps}")
    ax.set_title(f"{report.name}: clean vs robust (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def eps_figure(report: Any) -> Any:
    """Worst-case robust accuracy against ε per architecture (ε = 0: clean accuracy)."""
    fig = new_figure(7.0, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    eps_values = []
    for e in report.eps:
        eps_values.append(next(t["rows"][e]["eps"] for t in report.trials if e in t["rows"]))
    xs = [0.0, *eps_values]
    seen = set()
    for row in report.rows:
        ys = [row["clean"]["mean"], *[row["eps"][e]["worst_case"]["mean"] for e in report.eps]]
        if any(y is None for y in ys):
            continue
        marker, colour, name = _STYLE.get(row["kind"], ("o", "black", row["kind"]))
        faint = row["kind"] in ("random", "sampled")
        if faint:
            ax.plot(xs, ys, color=colour, alpha=0.35, linewidth=0.8,
                    label=None if name in seen else name)
            seen.add(name)
        else:
            ax.plot(xs, ys, marker=marker if marker != "." else "o", linewidth=1.2,
                    label=row["label"])
    _chance_lines(ax, chance_level(report))
    ax.set_xlabel("ε (L∞, [0, 1] pixels)")
    ax.set_ylabel("accuracy (%), worst case over attacks")
    ax.set_title(f"{report.name}: robust accuracy vs ε (means over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return fig


def write_figures(report: Any, out: Path, tensorboard_dir: Path | None) -> list[Path]:
    """Write ``pareto.png`` and ``robust_vs_eps.png`` to ``out``; also to TensorBoard."""
    figures = {"pareto": pareto_figure(report), "robust_vs_eps": eps_figure(report)}
    paths = []
    for stem, fig in figures.items():
        paths += write_figure(fig, out / stem, formats=("png",))
    if tensorboard_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(tensorboard_dir)) as writer:
            for stem, fig in figures.items():
                writer.add_image(f"study/{stem}", figure_array(fig), 0, dataformats="HWC")
            writer.add_text("study/table", report.table, 0)
        paths.append(tensorboard_dir)
    return paths
