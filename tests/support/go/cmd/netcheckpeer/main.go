// Command netcheckpeer runs Tailscale's own netcheck (tailscale.com/net/netcheck, Client.GetReport) on a
// DERP map file and prints each report as one JSON line, for derptool's differential tests and benchmarks.
//
// One process serves many rounds, so the client keeps its history between them (incremental reports and
// the home-region history work as in tailscaled). Requests are JSON lines on stdin:
//
//	{"map": "/path/to/derpmap.json", "full": true, "enough": 0}
//
// "map" is a tailcfg.DERPMap JSON file (read again on every request), "full" forces a full report
// (MakeNextReportFull), "enough" > 0 sets how many answering regions end the STUN phase early (netcheck's
// default is 3; a benchmark that wants every region measured sets the number of regions). Each answer is
// one line: {"wall_ns": N, "report": {...netcheck.Report...}} or {"error": "..."}. The process ends at
// end of input.
//
// Flags: -bind ADDR:PORT (the UDP address netcheck binds, default ":0"), -verbose (netcheck's log on stderr).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"reflect"
	"time"
	"unsafe"

	"tailscale.com/net/netcheck"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/logger"
	"tailscale.com/util/eventbus"
)

type request struct {
	Map    string `json:"map"`
	Full   bool   `json:"full"`
	Enough int    `json:"enough"`
}

type answer struct {
	WallNS int64            `json:"wall_ns,omitempty"`
	Report *netcheck.Report `json:"report,omitempty"`
	Error  string           `json:"error,omitempty"`
}

// setEnoughRegions sets the client's unexported test knob for the number of regions that end the STUN
// phase early (tests only: it lets a benchmark wait for every region instead of the first few).
func setEnoughRegions(c *netcheck.Client, n int) {
	f := reflect.ValueOf(c).Elem().FieldByName("testEnoughRegions")
	if !f.IsValid() {
		log.Fatalf("netcheck.Client has no testEnoughRegions field in this version")
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetInt(int64(n))
}

func readMap(path string) (*tailcfg.DERPMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dm := new(tailcfg.DERPMap)
	if err := json.Unmarshal(data, dm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return dm, nil
}

func main() {
	bind := flag.String("bind", ":0", "UDP address netcheck's sockets bind")
	verbose := flag.Bool("verbose", false, "netcheck's log on stderr")
	flag.Parse()

	logf := logger.Discard
	if *verbose {
		logf = log.Printf
	}
	bus := eventbus.New()
	defer bus.Close()
	netMon, err := netmon.New(bus, logf)
	if err != nil {
		log.Fatalf("netmon: %v", err)
	}
	defer netMon.Close()
	c := &netcheck.Client{NetMon: netMon, Logf: logf, UseDNSCache: false}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Standalone(ctx, *bind); err != nil {
		log.Fatalf("netcheck standalone: %v", err)
	}

	out := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			_ = out.Encode(answer{Error: "bad request: " + err.Error()})
			continue
		}
		dm, err := readMap(req.Map)
		if err != nil {
			_ = out.Encode(answer{Error: err.Error()})
			continue
		}
		setEnoughRegions(c, req.Enough)
		if req.Full {
			c.MakeNextReportFull()
		}
		t0 := time.Now()
		report, err := c.GetReport(ctx, dm, nil)
		wall := time.Since(t0)
		if err != nil {
			_ = out.Encode(answer{Error: err.Error()})
			continue
		}
		_ = out.Encode(answer{WallNS: wall.Nanoseconds(), Report: report})
	}
}
