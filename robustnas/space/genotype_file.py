"""Reading genotype JSON files safely: size, encoding and nesting limits (every space)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustnas.errors import GenotypeError

#: A genotype file is a few kB; anything much larger is not one.
MAX_FILE_BYTES = 1 << 20


def read_genotype_json(path: str | Path) -> Any:
    """The parsed JSON of a genotype file; GenotypeError for a file that is too large
    (:data:`MAX_FILE_BYTES`), not UTF-8, not JSON or nested too deeply."""
    path = Path(path)
    from robustnas.space.checkpoint_hint import refuse_checkpoint

    refuse_checkpoint(path)  # a checkpoint: name the command that takes it
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise GenotypeError(f"genotype file {path} is {size} bytes; a genotype file is at "
                                f"most {MAX_FILE_BYTES} bytes")
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise GenotypeError(f"cannot read genotype file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GenotypeError(f"genotype file {path} is not UTF-8 text (a binary file?)") from None
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise GenotypeError(f"{path}: JSON nested too deeply (a genotype is nested 3 levels)") \
            from None
