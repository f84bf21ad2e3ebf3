// Command gopeer is a placeholder that pins the Go packages derptool's differential tests use.
package main

import (
	_ "github.com/tailscale/hujson"
	_ "tailscale.com/derp"
	_ "tailscale.com/derp/derphttp"
	_ "tailscale.com/net/netcheck"
	_ "tailscale.com/net/netmon"
	_ "tailscale.com/net/stun"
	_ "tailscale.com/tailcfg"
	_ "tailscale.com/types/key"
)

func main() {}
