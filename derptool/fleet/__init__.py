"""Many sites: what a geofence costs each of them, from their latency reports or from Prometheus.

* :mod:`.reports`: one site's report (``derptool latency --format json`` or ``tailscale netcheck --format json``);
* :mod:`.files`: reading reports from files and directories;
* :mod:`.prometheus`: reports from a Prometheus server scraping ``derptool latency --listen`` exporters;
* :mod:`.impact`: the home region of each site before and after the geofence, by netcheck's rule;
* :mod:`.suggest`: the regions a jurisdiction should keep so that no site's increase exceeds a budget.
"""

from derptool.fleet.impact import Home, Impact, SiteImpact, assess, assess_change, home_region
from derptool.fleet.reports import SiteReport, parse_report, site_name
from derptool.fleet.suggest import Suggestion, suggest

__all__ = [
    "Home",
    "Impact",
    "SiteImpact",
    "SiteReport",
    "Suggestion",
    "assess",
    "assess_change",
    "home_region",
    "parse_report",
    "site_name",
    "suggest",
]
