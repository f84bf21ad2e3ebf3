// Command hspolicy compiles a policy with headscale's policy v2 engine for a tailnet in derptool's
// tailnet-file shape ({"users": [{"id", "name", "email"}], "nodes": {NAME: {"hostname", "user", "tags",
// "ipv4", "ipv6", "routable_ips", "approved_routes"}}}) and writes, per node, one JSON line
// {"node": NAME, "packet_filter_rules": [...]} (plus "ssh_policy" with -ssh and "peers" with -peers).
// Its own timings go to stderr as one JSON object:
// {"nodes", "compile_seconds", "filters_seconds", "engine_seconds", "total_seconds"}, where
// engine_seconds is building the policy manager plus every node's reduced packet filter (and SSH policy
// and peer map when asked for), and total_seconds adds reading the input and writing the output.
//
// Usage: hspolicy [-ssh] [-peers] [-quiet] POLICY TAILNET
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/juanfont/headscale/hscontrol/policy"
	"github.com/juanfont/headscale/hscontrol/types"
	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"tailscale.com/tailcfg"
)

type fileUser struct {
	ID    uint   `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type fileNode struct {
	Hostname       string   `json:"hostname"`
	User           string   `json:"user"`
	Tags           []string `json:"tags"`
	IPv4           string   `json:"ipv4"`
	IPv6           string   `json:"ipv6"`
	RoutableIPs    []string `json:"routable_ips"`
	ApprovedRoutes []string `json:"approved_routes"`
}

type tailnetFile struct {
	Users []fileUser `json:"users"`
	// Nodes keep the file's order: decoded as raw members, then walked in order.
	Nodes json.RawMessage `json:"nodes"`
}

type peerOut struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

type nodeOut struct {
	Node              string               `json:"node"`
	PacketFilterRules []tailcfg.FilterRule `json:"packet_filter_rules"`
	SSHPolicy         *tailcfg.SSHPolicy   `json:"ssh_policy,omitempty"`
	Peers             []peerOut            `json:"peers,omitempty"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hspolicy: "+format+"\n", args...)
	os.Exit(2)
}

// orderedNodes decodes the "nodes" object keeping the order of its members.
func orderedNodes(raw json.RawMessage) ([]string, []fileNode) {
	dec := json.NewDecoder(bytesReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		fail(`"nodes" must be an object of node name to node`)
	}
	var names []string
	var nodes []fileNode
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			fail("nodes: %v", err)
		}
		var n fileNode
		if err := dec.Decode(&n); err != nil {
			fail("node %v: %v", key, err)
		}
		names = append(names, key.(string))
		nodes = append(nodes, n)
	}
	return names, nodes
}

func prefixes(texts []string, what, node string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(texts))
	for _, t := range texts {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			fail("node %q: %s: %v", node, what, err)
		}
		out = append(out, p.Masked())
	}
	return out
}

func main() {
	withSSH := flag.Bool("ssh", false, "also write each node's SSH policy")
	withPeers := flag.Bool("peers", false, "also write each node's peers (headscale's peer map)")
	quiet := flag.Bool("quiet", false, "write no per-node lines (timings only)")
	flag.Parse()
	zerolog.SetGlobalLevel(zerolog.WarnLevel) // headscale logs each hash change at debug level
	if flag.NArg() != 2 {
		fail("usage: hspolicy [-ssh] [-peers] [-quiet] POLICY TAILNET")
	}
	start := time.Now()
	polBytes, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fail("%v", err)
	}
	tnBytes, err := os.ReadFile(flag.Arg(1))
	if err != nil {
		fail("%v", err)
	}
	var tn tailnetFile
	if err := json.Unmarshal(tnBytes, &tn); err != nil {
		fail("tailnet: %v", err)
	}
	users := make([]types.User, 0, len(tn.Users))
	byLogin := map[string]int{}
	for i, u := range tn.Users {
		id := u.ID
		if id == 0 {
			id = uint(i + 1)
		}
		users = append(users, types.User{Model: gorm.Model{ID: id}, Name: u.Name, Email: u.Email})
		if u.Name != "" {
			byLogin[u.Name] = i
		}
		if u.Email != "" {
			byLogin[u.Email] = i
		}
	}
	names, fileNodes := orderedNodes(tn.Nodes)
	nodes := make([]*types.Node, 0, len(fileNodes))
	for i, fn := range fileNodes {
		name := names[i]
		n := &types.Node{
			ID:         types.NodeID(i + 1),
			Hostname:   fn.Hostname,
			GivenName:  name,
			ForcedTags: fn.Tags,
			Hostinfo: &tailcfg.Hostinfo{
				Hostname:    fn.Hostname,
				RoutableIPs: prefixes(fn.RoutableIPs, "routable_ips", name),
			},
			ApprovedRoutes: prefixes(fn.ApprovedRoutes, "approved_routes", name),
		}
		if fn.IPv4 != "" {
			a, err := netip.ParseAddr(fn.IPv4)
			if err != nil {
				fail("node %q: ipv4: %v", name, err)
			}
			n.IPv4 = &a
		}
		if fn.IPv6 != "" {
			a, err := netip.ParseAddr(fn.IPv6)
			if err != nil {
				fail("node %q: ipv6: %v", name, err)
			}
			n.IPv6 = &a
		}
		owner := fn.User
		if owner == "" && len(fn.Tags) == 0 && len(users) > 0 {
			owner = users[0].Name
			if owner == "" {
				owner = users[0].Email
			}
		}
		if owner != "" {
			k, ok := byLogin[owner]
			if !ok {
				fail("node %q: user %q is not in \"users\"", name, owner)
			}
			n.User = users[k]
			n.UserID = users[k].ID
		}
		nodes = append(nodes, n)
	}
	readDone := time.Now()

	views := types.Nodes(nodes).ViewSlice()
	pm, err := policy.NewPolicyManager(polBytes, users, views)
	if err != nil {
		fail("policy: %v", err)
	}
	// Routes the policy's autoApprovers cover are approved, as headscale does when a node announces them.
	changed := false
	for _, n := range nodes {
		approved, ok := policy.ApproveRoutesWithPolicy(pm, n.View(), n.ApprovedRoutes, n.Hostinfo.RoutableIPs)
		if ok {
			n.ApprovedRoutes = approved
			changed = true
		}
	}
	if changed {
		views = types.Nodes(nodes).ViewSlice()
		if _, err := pm.SetNodes(views); err != nil {
			fail("policy: %v", err)
		}
	}
	compiled := time.Now()

	out := make([]nodeOut, len(nodes))
	for i, nv := range views.All() {
		rules, err := pm.FilterForNode(nv)
		if err != nil {
			fail("node %q: %v", names[i], err)
		}
		out[i] = nodeOut{Node: names[i], PacketFilterRules: rules}
		if *withSSH {
			sp, err := pm.SSHPolicy(nv)
			if err != nil {
				fail("node %q: ssh: %v", names[i], err)
			}
			out[i].SSHPolicy = sp
		}
	}
	filtered := time.Now()
	if *withPeers {
		peerMap := pm.BuildPeerMap(views)
		for i, nv := range views.All() {
			peers := peerMap[nv.ID()]
			lst := make([]peerOut, 0, len(peers))
			for _, p := range peers {
				var ips []string
				for _, pfx := range p.Prefixes() {
					ips = append(ips, pfx.String())
				}
				lst = append(lst, peerOut{Name: names[int(p.ID())-1], Addresses: ips})
			}
			sort.Slice(lst, func(a, b int) bool { return lst[a].Name < lst[b].Name })
			out[i].Peers = lst
		}
	}
	engineDone := time.Now()

	if !*quiet {
		w := bufio.NewWriterSize(os.Stdout, 1<<16)
		enc := json.NewEncoder(w)
		for i := range out {
			if err := enc.Encode(&out[i]); err != nil {
				fail("%v", err)
			}
		}
		if err := w.Flush(); err != nil {
			fail("%v", err)
		}
	}
	end := time.Now()
	timing := map[string]any{
		"nodes":           len(nodes),
		"read_seconds":    readDone.Sub(start).Seconds(),
		"compile_seconds": compiled.Sub(readDone).Seconds(),
		"filters_seconds": filtered.Sub(compiled).Seconds(),
		"engine_seconds":  engineDone.Sub(readDone).Seconds(),
		"total_seconds":   end.Sub(start).Seconds(),
	}
	b, _ := json.Marshal(timing)
	fmt.Fprintln(os.Stderr, string(b))
}
