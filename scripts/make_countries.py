"""Rebuild ``derptool/data/countries.geojson`` (the country shapes that place regions by coordinates).

Run once, by hand, when the source data changes; derptool reads only the result (nothing is downloaded at
run time). Inputs, both from package registries:

* ``countries-50m.json`` of the npm package ``world-atlas`` 2.0.2 (``npm pack world-atlas@2.0.2``): Natural
  Earth's 1:50m Admin 0 countries (public domain) as TopoJSON, ISO 3166-1 numeric codes as IDs;
* ``country_data.tsv`` of the PyPI package ``country_converter`` (``pip download --no-deps country_converter``):
  the ISO 3166-1 numeric -> alpha-2 codes and each country's continent (the UN geoscheme, seven continents).

    python scripts/make_countries.py countries-50m.json country_data.tsv derptool/data/countries.geojson

The shapes are simplified (Douglas-Peucker, ``TOLERANCE`` degrees, topology kept) and rounded to ``DIGITS``
decimals to keep the wheel small; ``derptool.derpmap.countries`` allows for the lost detail near coasts.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.ops import unary_union
from shapely.validation import make_valid

TOLERANCE = 0.02
DIGITS = 3

# Natural Earth shapes without an ISO numeric code: the ISO 3166-1 alpha-2 code derptool gives them.
# Somaliland and Northern Cyprus are placed in the states that ISO 3166 lists them under; Kosovo has the
# user-assigned code XK that its certificates and registries use; the Siachen Glacier is held by India;
# Natural Earth's "Indian Ocean Ter." are Christmas Island (east of 100 E) and the Cocos (Keeling) Islands.
UNNUMBERED = {"Somaliland": "SO", "Kosovo": "XK", "N. Cyprus": "CY", "Siachen Glacier": "IN"}
NAMES = {"XK": "Kosovo", "CX": "Christmas Island", "CC": "Cocos (Keeling) Islands"}
EXTRA_CONTINENTS = {"XK": "EU"}
CONTINENT_CODES = {
    "Africa": "AF",
    "Antarctica": "AN",
    "Asia": "AS",
    "Europe": "EU",
    "North America": "NA",
    "Oceania": "OC",
    "South America": "SA",
}


def decode_arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """The TopoJSON's arcs as absolute (lon, lat) points (delta-decoded, quantisation undone)."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(indexes: list[int], arcs: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def polygons(geometry: dict[str, Any], arcs: list[list[tuple[float, float]]]) -> list[Polygon]:
    parts = [geometry["arcs"]] if geometry["type"] == "Polygon" else geometry["arcs"]
    out = []
    for rings in parts:
        shell, *holes = (ring(r, arcs) for r in rings)
        out.append(Polygon(shell, holes))
    return out


def rounded(geom: Any) -> dict[str, Any]:
    def r(rings: Any) -> Any:
        return [[[round(x, DIGITS), round(y, DIGITS)] for x, y in ring_] for ring_ in rings]

    g = mapping(geom)
    if g["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": r(g["coordinates"])}
    return {"type": "MultiPolygon", "coordinates": [r(p) for p in g["coordinates"]]}


def main(topo_path: str, table_path: str, out_path: str) -> None:
    topo = json.loads(Path(topo_path).read_text(encoding="utf-8"))
    with open(table_path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:  # a few codes are written as patterns of their aliases: '^GB$|^UK$'
        r["ISO2"] = re.sub(r"[^A-Z].*", "", r["ISO2"].lstrip("^"))
    alpha2 = {int(r["ISOnumeric"]): r["ISO2"] for r in rows if r["ISOnumeric"].isdigit()}
    continent = {r["ISO2"]: CONTINENT_CODES[r["Continent_7"]] for r in rows if r["Continent_7"] in CONTINENT_CODES}
    continent.update(EXTRA_CONTINENTS)
    arcs = decode_arcs(topo)
    parts: dict[str, list[Polygon]] = {}
    names: dict[str, str] = dict(NAMES)
    for g in topo["objects"]["countries"]["geometries"]:
        name = g["properties"]["name"]
        if g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        for poly in polygons(g, arcs):
            if "id" in g:
                code = alpha2[int(g["id"])]
                names.setdefault(code, name)
            elif name == "Indian Ocean Ter.":
                code = "CX" if poly.centroid.x > 100 else "CC"
            else:
                code = UNNUMBERED[name]
            parts.setdefault(code, []).append(poly)
    features = []
    for code in sorted(parts):
        geom = make_valid(unary_union([make_valid(p) for p in parts[code]]))
        simple = geom.simplify(TOLERANCE, preserve_topology=True)
        polys = [p for p in getattr(simple, "geoms", [simple]) if isinstance(p, Polygon) and not p.is_empty]
        if not polys:
            continue
        out = polys[0] if len(polys) == 1 else MultiPolygon(polys)
        features.append(
            {
                "type": "Feature",
                "properties": {"iso_a2": code, "name": names[code], "continent": continent[code]},
                "geometry": rounded(out),
            }
        )
    doc = {
        "type": "FeatureCollection",
        "source": "Natural Earth 1:50m Admin 0 countries (public domain), via world-atlas 2.0.2; "
        f"simplified to {TOLERANCE} degrees, {DIGITS} decimals; see derptool/data/README.md",
        "features": features,
    }
    Path(out_path).write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(features)} countries, {Path(out_path).stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
