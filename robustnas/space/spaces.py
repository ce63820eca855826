"""The registry of search spaces (``--space NAME``) and the lookups every layer uses.

A space registers itself with one line, :func:`register_space` (see
:mod:`robustnas.space.protocol` for what a space provides). The spaces shipped with
robustnas live in packages ``robustnas/space/<name>/`` whose module ``space.py`` holds that
line; they are found by scanning the package (:func:`load_builtin_spaces`), so a new space
is new files and no edit elsewhere. A space defined in a notebook or test registers the same
way. The default space (for options left unset) is a registry setting, :data:`DEFAULT_SPACE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustnas.errors import GenotypeError, UsageError
from robustnas.registry import Registry
from robustnas.space.protocol import ModelKind, SearchSpace, check_space

if TYPE_CHECKING:
    from torch import nn

#: Spaces by name; the shipped ones are found as ``robustnas/space/<name>/space.py``.
SPACES: Registry[SearchSpace] = Registry("search space", discover=("robustnas.space.*.space",))
#: The space of options and files that name none (``--space`` unset, genotype files
#: written before spaces were recorded).
DEFAULT_SPACE = "darts"


def register_space(space: SearchSpace) -> SearchSpace:
    """Check ``space`` against the protocol and register it and its model kinds (all or
    nothing: a name already taken raises ValueError and registers none)."""
    from robustnas.space.kinds import MODEL_KINDS

    check_space(space)
    kinds = list(space.model_kinds())
    for kind in kinds:
        if not isinstance(kind, ModelKind):
            raise TypeError(f"search space {space.name}: model_kinds() must return ModelKind")
        if kind.name in MODEL_KINDS:
            raise ValueError(f"search space {space.name}: model kind {kind.name!r} is already "
                             "registered")
    SPACES.add(space.name, space)
    for kind in kinds:
        MODEL_KINDS.add(kind.name, kind)
    return space


def unregister_space(name: str) -> None:
    """Remove space ``name`` and its model kinds (for spaces defined in a session)."""
    from robustnas.space.kinds import MODEL_KINDS

    space = SPACES.pop(name)
    for kind in space.model_kinds():
        MODEL_KINDS.pop(kind.name)


def load_builtin_spaces() -> None:
    """Import ``robustnas.space.<pkg>.space`` for every subpackage that has one (once)."""
    SPACES.discover()


def space_names() -> list[str]:
    """The registered spaces, the default first."""
    load_builtin_spaces()
    names = SPACES.names()
    return sorted(names, key=lambda n: (n != DEFAULT_SPACE, names.index(n)))


def get_space(name: str | None = None) -> SearchSpace:
    """The space registered as ``name`` (the default when None or empty; UsageError listing
    the spaces otherwise)."""
    load_builtin_spaces()
    return SPACES.get(name or DEFAULT_SPACE)


def space_of_genotype(genotype: Any) -> SearchSpace:
    """The space a genotype object belongs to (its ``space`` attribute)."""
    return get_space(getattr(genotype, "space", None))


def space_of_model(model: nn.Module) -> SearchSpace | None:
    """The space of a supernet or network (``model.space``), None for models of no space
    (hand-crafted networks, ensembles)."""
    name = getattr(getattr(model, "module", model), "space", None)
    return get_space(name) if name else None


def spec_space(spec: str | Path) -> str:
    """Which space a genotype spec names: a JSON file is asked of every space's format tag
    (a file without one is the default space's), a string of every space's
    ``recognises``; anything else is the default space's."""
    load_builtin_spaces()
    text = str(spec).strip()
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        from robustnas.space.genotype_file import read_genotype_json

        try:  # size, encoding and nesting limits of genotype files
            data = read_genotype_json(path)
        except GenotypeError:
            return DEFAULT_SPACE  # the default space's loader reports the problem
        for name in SPACES:
            if name != DEFAULT_SPACE and SPACES.get(name).owns(data):
                return name
        return DEFAULT_SPACE
    if not path.exists():
        for name in SPACES:
            if name != DEFAULT_SPACE and SPACES.get(name).recognises(text):
                return name
    return DEFAULT_SPACE


def load_any_genotype(spec: Any, space: str | None = None) -> Any:
    """A genotype of ``space`` (detected from ``spec`` when None): see :func:`spec_space`."""
    if not isinstance(spec, (str, Path)):
        return spec
    return get_space(space or spec_space(spec)).load(spec)


def genotype_from_any_dict(data: Any, source: str = "genotype") -> Any:
    """The genotype of parsed JSON ``data`` of any space (by its format tag)."""
    load_builtin_spaces()
    for name in SPACES:
        if name != DEFAULT_SPACE and SPACES.get(name).owns(data):
            return SPACES.get(name).from_dict(data, source)
    return get_space().from_dict(data, source)


def check_space_name(name: str, what: str = "space") -> str:
    """``name`` if it is a registered space; UsageError listing the spaces otherwise."""
    load_builtin_spaces()
    if name not in SPACES:
        raise UsageError(f"{what}: unknown search space {name!r} "
                         f"(choose from: {', '.join(space_names())})")
    return name
