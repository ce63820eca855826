"""A regulariser that no epoch of a search would use is refused, not silently skipped.

AdvRush starts at epoch 50 of its paper's 60; in a short search it used to be plain DARTS
without a word (a digits study's AdvRush rows equalled its `none` rows).
"""

from __future__ import annotations

import pytest
import yaml

from robustnas.errors import UsageError
from robustnas.search.objective import RegularizerSet


def _refusal(spec: str, options: dict, epochs: int, warmup: int) -> str:
    with pytest.raises(UsageError) as info:
        RegularizerSet(spec, options).check_schedule(epochs, warmup)
    return str(info.value)


def test_advrush_default_start_is_refused_in_a_short_search():
    message = _refusal("advrush", {}, epochs=3, warmup=1)
    assert "advrush" in message and "epoch 50" in message and "never act" in message
    assert "start_epoch" in message and "\n" not in message


def test_a_start_inside_the_search_is_accepted():
    RegularizerSet("advrush", {"advrush": {"start_epoch": 1}}).check_schedule(3, 1)
    RegularizerSet("advrush", {}).check_schedule(60, 0)  # the paper's schedule


def test_an_arch_term_must_act_after_the_warm_up():
    # α moves only from warmup_epochs on; a term active only before that never acts
    message = _refusal("jacobian", {}, epochs=2, warmup=2)
    assert "α moves from epoch 2" in message
    RegularizerSet("jacobian", {}).check_schedule(2, 1)


def test_advrush_ramp_that_stays_at_zero_is_refused():
    # h_ramp scales h by 0 in the first epoch after start_epoch: one active epoch is empty
    options = {"advrush": {"start_epoch": 2, "h_ramp": True}}
    assert "h_ramp" in _refusal("advrush", options, epochs=3, warmup=1)
    RegularizerSet("advrush", options).check_schedule(4, 1)


def test_every_regulariser_of_a_composition_is_checked():
    message = _refusal("jacobian,advrush", {"jacobian": {"start_epoch": 0}}, epochs=4, warmup=1)
    assert message.startswith("regularizer advrush")


def test_search_refuses_before_writing_anything(tmp_path):
    from robustnas.search.api import run_search

    out = tmp_path / "run"
    with pytest.raises(UsageError, match="never act"):
        run_search(overrides={"dataset": "digits", "epochs": 2, "regularizer": "advrush",
                              "device": "cpu", "out": str(out)})
    assert not out.exists()


def test_study_refuses_a_search_source_whose_regulariser_never_acts(tmp_path):
    from robustnas.studies.sources import expand_sources
    from robustnas.studies.spec import load_study_spec

    search = {"regularizers": ["none", "advrush"], "seeds": [0],
              "set": {"epochs": 3, "warmup_epochs": 1}}
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump({
        "name": "short", "out": str(tmp_path / "short"), "seeds": [0],
        "architectures": [{"search": search}],
        "training": {"dataset": "digits", "epochs": 1, "C": 4, "layers": 2},
        "evaluation": {"attacks": "clean", "n": 10}}))
    with pytest.raises(UsageError, match="advrush starts at epoch 50"):
        expand_sources(load_study_spec(path), tmp_path / "short")
