"""Cell diagrams and α heatmaps: valid PNG/SVG files, arrays of the right shape, clear errors."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from robustnas.errors import GenotypeError, UsageError
from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.ops import PRIMITIVES
from robustnas.viz import (
    OP_COLORS,
    alpha_heatmap,
    cell_image,
    draw_alpha_heatmap,
    draw_cell,
    draw_genotype,
    edge_labels,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_texts(path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG_NS}text")]


@pytest.fixture(scope="module")
def pdarts():
    return GENOTYPES.get("PDARTS")


def test_draw_cell_writes_png_and_svg(tmp_path, pdarts):
    paths = draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "cell", title="normal")
    assert paths == [tmp_path / "cell.png", tmp_path / "cell.svg"]
    assert paths[0].read_bytes()[:8] == PNG_MAGIC
    with Image.open(paths[0]) as im:
        im.load()
        assert im.width > 200 and im.height > 100
    texts = svg_texts(paths[1])
    # Every edge is labelled with its op, once per edge; the title is there as well.
    for op in {op for op, _ in pdarts.normal}:
        assert texts.count(op) == sum(1 for o, _ in pdarts.normal if o == op)
    assert "normal" in texts
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.png", "cell.svg"]


def test_png_has_the_colours_of_the_ops(tmp_path, pdarts):
    """Pixels of each edge colour appear, and a colour of an absent op does not."""
    image = cell_image(pdarts.normal, pdarts.normal_concat)
    pixels = image.reshape(-1, 3).astype(int)

    def has_colour(hex_colour: str) -> bool:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return bool((np.abs(pixels - rgb).max(axis=1) <= 6).sum() > 20)

    for op in {op for op, _ in pdarts.normal}:
        assert has_colour(OP_COLORS[op]), op
    assert not has_colour(OP_COLORS["max_pool_3x3"])


def test_draw_genotype_names_and_prefix(tmp_path):
    geno = GENOTYPES.get("DARTS_V2")
    out = draw_genotype(geno, tmp_path / "pics", prefix="best_")
    assert set(out) == {"normal", "reduction"}
    names = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert names == ["best_normal.png", "best_normal.svg", "best_reduction.png",
                     "best_reduction.svg"]
    reduce_texts = svg_texts(out["reduction"][1])
    assert reduce_texts.count("max_pool_3x3") == geno.count("max_pool_3x3", "reduce")
    assert "reduction cell" in reduce_texts


def test_stem_with_dots_keeps_the_whole_name(tmp_path, pdarts):
    paths = draw_cell(pdarts.reduce, pdarts.reduce_concat, tmp_path / "epoch.3")
    assert [p.name for p in paths] == ["epoch.3.png", "epoch.3.svg"]


def test_svg_is_reproducible(tmp_path, pdarts):
    a = draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "a")[1].read_bytes()
    b = draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "b")[1].read_bytes()
    assert a == b


def test_cell_image_shape_and_custom_cell():
    # Two nodes, a repeated (op, input) pair, an op outside the standard set, concat of an input.
    edges = [("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("my_op", 2), ("skip_connect", 1)]
    image = cell_image(edges, [1, 3])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.min() < 100 and image.max() == 255


@pytest.mark.parametrize("edges, concat, match", [
    ([("sep_conv_3x3", 0)], [2], "2 edges per node"),
    ([("sep_conv_3x3", 0), ("sep_conv_3x3", 2)], [2], "out of range"),
    ([("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], [2, 2], "distinct"),
    ([("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], [4], "distinct"),
    ([("sep_conv_3x3",), ("sep_conv_3x3", 1)], [2], "pairs"),
])
def test_bad_cells_raise_genotype_error(tmp_path, edges, concat, match):
    with pytest.raises(GenotypeError, match=match):
        draw_cell(edges, concat, tmp_path / "bad")
    assert not list(tmp_path.iterdir())


def test_drawing_is_fast(tmp_path, pdarts):
    draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "warm")
    start = time.perf_counter()
    draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "timed")
    # Target is < 0.5 s; the bound is loose because the test machine's cores are shared.
    assert time.perf_counter() - start < 1.5


def test_drawing_from_threads_matches_sequential(pdarts):
    cells = [(pdarts.normal, pdarts.normal_concat), (pdarts.reduce, pdarts.reduce_concat)] * 2
    sequential = [cell_image(e, c) for e, c in cells]
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(lambda ec: cell_image(*ec), cells))
    for a, b in zip(sequential, threaded):
        np.testing.assert_array_equal(a, b)


def test_edge_labels_follow_darts_order_and_the_genotype_numbering():
    labels = edge_labels(14)
    names = {0: "$c_{k-2}$", 1: "$c_{k-1}$"}
    expected = [f"node {j} ← {names.get(i, f'node {i}')}" for j in range(2, 6)
                for i in range(j)]
    assert labels == expected
    assert labels[5] == "node 4 ← $c_{k-2}$" and labels[7] == "node 4 ← node 2"
    assert edge_labels(7) == [f"edge {k}" for k in range(7)]


def test_cell_picture_numbers_nodes_as_the_json(tmp_path, pdarts):
    _, svg = draw_cell(pdarts.normal, pdarts.normal_concat, tmp_path / "cell")
    texts = set(svg_texts(svg))
    assert {"2", "3", "4", "5"} <= texts and not {"0", "1"} & texts


def test_probability_heatmap_is_centred_on_uniform_with_three_decimals(tmp_path):
    weights = torch.full((2, 8), 0.125)
    weights[0, :2] = torch.tensor([0.131, 0.119])
    _, svg = draw_alpha_heatmap(weights, [f"op{i}" for i in range(8)], tmp_path / "h")
    texts = svg_texts(svg)
    assert "0.131" in texts and "0.119" in texts and texts.count("0.125") >= 14
    assert "white = uniform 1/8" in texts


def test_alpha_heatmap_array():
    weights = torch.softmax(torch.randn(14, len(PRIMITIVES), requires_grad=True), dim=-1)
    image = alpha_heatmap(weights, PRIMITIVES, "softmax(α) normal")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    small = alpha_heatmap(weights[:5].detach().numpy(), PRIMITIVES)
    assert small.shape[0] < image.shape[0] and small.shape[1] == image.shape[1]


def test_alpha_heatmap_svg_has_labels_and_values(tmp_path):
    weights = torch.full((5, 3), 0.1)
    weights[2, 1] = 0.75
    weights[4, 0] = float("nan")
    _, svg = draw_alpha_heatmap(weights, ["a", "b", "c"], tmp_path / "heat", title="α")
    texts = svg_texts(svg)
    assert {"a", "b", "c", "α", "node 3 ← node 2"} <= set(texts)
    assert texts.count("0.75") == 1 and texts.count("0.1") == 13 and "nan" in texts


def test_alpha_heatmap_rejects_mismatched_shapes():
    with pytest.raises(UsageError, match="3 columns"):
        alpha_heatmap(torch.zeros(14, 3), PRIMITIVES)
    with pytest.raises(UsageError, match="matrix"):
        alpha_heatmap(torch.zeros(8), PRIMITIVES)


def _heatmap_texts(fig):
    ax = fig.axes[0]
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}


def test_heatmap_bolds_and_boxes_the_kept_operations_not_none():
    from robustnas.viz import darts_kept_cells
    from robustnas.viz.heatmap import _build_figure

    primitives = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    weights = torch.tensor([[0.70, 0.10, 0.15, 0.05],   # node 2 <- c_{k-2}: none largest
                            [0.40, 0.05, 0.05, 0.50],   # node 2 <- c_{k-1}
                            [0.25, 0.25, 0.25, 0.25],   # node 3 <- c_{k-2}
                            [0.10, 0.60, 0.20, 0.10],   # node 3 <- c_{k-1}
                            [0.55, 0.05, 0.30, 0.10]])  # node 3 <- node 2
    edges = [("skip_connect", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 1),
             ("skip_connect", 2)]
    kept = darts_kept_cells(edges, primitives)
    assert kept == [(0, 2), (1, 3), (3, 1), (4, 2)]
    fig = _build_figure(weights, primitives, "α", kept)
    texts = _heatmap_texts(fig)
    bold = {rc for rc, t in texts.items() if t.get_fontweight() == "bold"}
    assert bold == set(kept)  # row 0's none (0.70) is not bold; row 2 is not kept
    boxes = [p for p in fig.axes[0].patches if p.get_gid() == "kept"]
    assert sorted((round(b.get_y() + 0.5), round(b.get_x() + 0.5)) for b in boxes) == kept
    assert "kept" in fig.axes[0].get_title()
    # Without the genotype: the best operation other than none is bold in every row.
    plain = _heatmap_texts(_build_figure(weights, primitives, None))
    assert {rc for rc, t in plain.items() if t.get_fontweight() == "bold"} == {
        (0, 2), (1, 3), (2, 1), (3, 1), (4, 2)}


def test_probability_heatmap_colour_bar_stays_within_0_and_1():
    from robustnas.viz.heatmap import _build_figure

    weights = torch.tensor([[0.9, 0.05, 0.05], [0.3, 0.4, 0.3]])  # 1/3 - 0.567 < 0
    fig = _build_figure(weights, ["a", "b", "c"], None)
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == pytest.approx(0.0) and norm.vmax == pytest.approx(0.9)
    assert float(norm(1 / 3)) == pytest.approx(0.5)  # white is still the uniform weight
    low, high = fig.axes[1].get_ylim()
    assert low >= 0.0 and high <= 1.0
