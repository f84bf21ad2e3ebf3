"""derptool: measure, geofence and self-host Tailscale DERP relays, and write tailnet policy safely."""

__version__ = "0.1.0"
