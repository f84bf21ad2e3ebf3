"""Pictures: self-contained HTML pages (and PNG images) of DERP maps, latency, geofence impact and policy diffs.

One module per page kind (:mod:`.map_page`, :mod:`.latency_page`, :mod:`.impact_page`,
:mod:`.policy_diff_page`), over shared drawing (:mod:`.svg`, :mod:`.worldmap`) and the page itself
(:mod:`.page`). Every page builder returns a :class:`~derptool.report.page.Page`; ``.html()`` gives the
document, ``.png()`` its figures as a PNG. Pages load nothing from the network.
"""

from derptool.report.page import Page, Section, png_available, render_png
from derptool.report.worldmap import STATES, CountryShape, RegionMark, State

__all__ = ["STATES", "CountryShape", "Page", "RegionMark", "Section", "State", "png_available", "render_png"]
