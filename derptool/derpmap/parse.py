"""Reading plain data (decoded JSON or YAML) as a DERP map: the plain reader for the common case, pydantic's
validation (and its messages) for everything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derptool.derpmap._plain import read_plain
from derptool.derpmap.model import DERPMap, _describe, format_location, problems_from_validation, semantic_problems
from derptool.errors import MapError


def parse_derpmap(data: Any, *, source: str = "DERP map") -> DERPMap:
    """Validate plain data (decoded JSON/YAML) as a :class:`DERPMap`, raising :class:`MapError` on any problem.

    The message names the first problem with its path, and how many more there are.
    """
    if not isinstance(data, Mapping):
        raise MapError(f'{source}: a DERP map must be a JSON object with "Regions", got {_describe(data)}')
    plain = read_plain(data)
    if plain is not None and not any(p.severity == "error" for p in semantic_problems(plain)):
        return plain
    from pydantic import ValidationError  # lazy: pydantic's import costs start-up time the snapshot skips

    try:
        dmap = DERPMap.model_validate(data)
    except ValidationError as err:
        problems = problems_from_validation(err)
    else:
        problems = [p for p in semantic_problems(dmap) if p.severity == "error"]
        if not problems:
            return dmap
    first = problems[0]
    where = format_location(first.path)
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    raise MapError(f"{source}: {where + ': ' if where else ''}{first.message}{more}")


# -- merging -------------------------------------------------------------------------------------


__all__ = ["parse_derpmap"]
