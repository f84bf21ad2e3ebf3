"""Many sites: what a geofence costs each of them, from their latency reports or from Prometheus.

* :mod:`.reports`: one site's report (``derptool latency --format json`` or ``tailscale netcheck --format json``);
* :mod:`.files`: reading reports from files and directories;
* :mod:`.prometheus`: reports from a Prometheus server scraping ``derptool latency --listen`` exporters;
* :mod:`.impact`: the home region of each site before and after the geofence, by netcheck's rule.
"""

from derptool.fleet.impact import Home, Impact, SiteImpact, assess, home_region
from derptool.fleet.reports import SiteReport, parse_report, site_name

__all__ = ["Home", "Impact", "SiteImpact", "SiteReport", "assess", "home_region", "parse_report", "site_name"]
