// Command protoports reads a JSON array of grant "ip" strings on stdin and writes, for each one, what
// tailcfg's parser makes of it: {"proto": N, "first": A, "last": B} or {"error": "..."}.
// derptool's tests compare these answers with derptool.policy.selectors.parse_proto_port_range.
package main

import (
	"encoding/json"
	"os"

	"tailscale.com/tailcfg"
)

type answer struct {
	Proto *int    `json:"proto,omitempty"`
	First *uint16 `json:"first,omitempty"`
	Last  *uint16 `json:"last,omitempty"`
	Error string  `json:"error,omitempty"`
}

func main() {
	var entries []string
	if err := json.NewDecoder(os.Stdin).Decode(&entries); err != nil {
		os.Stderr.WriteString("protoports: " + err.Error() + "\n")
		os.Exit(2)
	}
	answers := make([]answer, 0, len(entries))
	for _, entry := range entries {
		got, err := tailcfg.ParseProtoPortRanges([]string{entry})
		if err != nil {
			answers = append(answers, answer{Error: err.Error()})
			continue
		}
		r := got[0]
		answers = append(answers, answer{Proto: &r.Proto, First: &r.Ports.First, Last: &r.Ports.Last})
	}
	if err := json.NewEncoder(os.Stdout).Encode(answers); err != nil {
		os.Exit(1)
	}
}
