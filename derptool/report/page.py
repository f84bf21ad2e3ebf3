"""A self-contained HTML page (inline CSS and SVG, nothing fetched) and its PNG picture.

The page sets a Content-Security-Policy that forbids every load from elsewhere, so even a hostile name in a
map cannot make the browser fetch anything. No script runs: hover texts are SVG ``<title>`` elements.
PNG pictures are the page's figures drawn by resvg (the ``resvg-py`` package: a Rust renderer in one
wheel, offline, no system library), installed with ``pip install 'derptool[png]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from derptool import __version__
from derptool.errors import UsageError
from derptool.report.svg import FONT, el, esc
from derptool.report.svg import text as svg_text

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1a202c;
margin:24px auto;max-width:1060px;padding:0 16px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0}
p.meta{color:#4a5568;margin:2px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e2e8f0;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#4a5568;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.omitted td{color:#777;text-decoration:line-through}tr.over td{background:#fff5f5}
svg{max-width:100%;height:auto;display:block}
.figure{margin:8px 0 16px}
"""


@dataclass
class Section:
    """A part of a page: a heading and markup already built (escaped)."""

    heading: str
    body: str
    figure: str | None = None
    """The section's SVG picture, if it has one (shown on the page and drawn into the PNG)."""
    picture: str | None = None
    """A smaller figure for the PNG in place of *figure* (a long chart cut to its worst rows)."""


@dataclass
class Page:
    """A page: title, a few summary lines, and sections."""

    title: str
    summary: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def html(self) -> str:
        """The page as one self-contained HTML document."""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="derptool {esc(__version__)}">',
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<header><h1>{esc(self.title)}</h1>",
            *(f'<p class="meta">{esc(line)}</p>' for line in self.summary),
            "</header>",
        ]
        for s in self.sections:
            parts.append(f"<section><h2>{esc(s.heading)}</h2>")
            if s.figure:
                parts.append(f'<div class="figure">{s.figure}</div>')
            parts.append(s.body)
            parts.append("</section>")
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def picture_svg(self) -> str:
        """The page's figures stacked under its title, as one SVG (what the PNG shows)."""
        figures = [f for s in self.sections if (f := s.picture or s.figure)]
        width = 1000.0
        y = 34.0
        items = [
            f"<style>text{{{FONT}}}</style>",
            el("rect", {"width": "100%", "height": "100%", "fill": "#ffffff"}),
            svg_text(10.0, 22.0, self.title, style="font-size:16px;font-weight:bold;fill:#1a202c"),
        ]
        for line in self.summary[:3]:
            items.append(svg_text(10.0, y + 6.0, line, style="font-size:11px;fill:#4a5568"))
            y += 15.0
        y += 6.0
        for fig in figures:
            height = _svg_height(fig)
            items.append(f'<g transform="translate(0 {y:.0f})">{fig}</g>')
            y += height + 10.0
        return el(
            "svg",
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "width": f"{width:g}",
                "height": f"{y:.0f}",
                "viewBox": f"0 0 {width:g} {y:.0f}",
            },
            items,
        )

    def png(self) -> bytes:
        """The page's figures as a PNG image (:class:`UsageError` when resvg-py is not installed)."""
        return render_png(self.picture_svg())


def _svg_height(svg: str) -> float:
    """The ``height`` attribute of the outer element of *svg* (which this package always writes)."""
    head = svg[: svg.index(">")]
    start = head.index(' height="') + len(' height="')
    return float(head[start : head.index('"', start)])


def png_available() -> bool:
    """True when the PNG renderer (resvg-py) is installed."""
    import importlib.util

    return importlib.util.find_spec("resvg_py") is not None


def render_png(svg: str, *, zoom: float = 1.5) -> bytes:
    """*svg* drawn as PNG by resvg (system fonts for text); :class:`UsageError` when resvg-py is missing."""
    try:
        import resvg_py  # optional: the 'png' extra
    except ImportError:
        raise UsageError(
            "--format png needs the resvg-py package: pip install 'derptool[png]' (or use --format html)"
        ) from None
    return bytes(resvg_py.svg_to_bytes(svg_string=svg, zoom=zoom, background="#ffffff"))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    row_attrs: Sequence[Mapping[str, str | int | float | None]] | None = None,
    numeric: Sequence[int] = (),
) -> str:
    """An HTML table; cells are plain text (escaped); *numeric* columns are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if j in numeric else f"<td>{esc(c)}</td>" for j, c in enumerate(row)
        )
        body.append(el("tr", row_attrs[i] if row_attrs else None, cells))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def paragraph(text: str) -> str:
    """A paragraph of plain text."""
    return f"<p>{esc(text)}</p>"
