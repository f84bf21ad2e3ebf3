// Command hujsonpeer answers HuJSON requests with Tailscale's Go hujson library, for derptool's
// differential tests and benchmarks. One process serves a whole test session.
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout, in order.
//
//	request:  {"op": OP, "input": BASE64, "patch": BASE64, "pointer": STR, "repeat": N}
//	response: {"ok": BOOL, "output": BASE64, "error": STR, "found": BOOL, "start": N, "end": N,
//	           "standard": BOOL, "ns": N}
//
// OP is one of parse (Parse then Pack), standardize, minimize, format (the Value methods, then
// Pack), patch (Value.Patch then Pack; on failure "output" holds the partly patched value),
// find (Value.Find; "output" is the found value packed, "start"/"end" its offsets), isstandard,
// and the timings time-parse, time-format, time-standardize, time-minimize, time-patch, which run
// the operation "repeat" times on fresh copies of the input and report the mean in "ns".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/tailscale/hujson"
)

type request struct {
	Op      string `json:"op"`
	Input   []byte `json:"input"`
	Patch   []byte `json:"patch"`
	Pointer string `json:"pointer"`
	Repeat  int    `json:"repeat"`
}

type response struct {
	OK       bool   `json:"ok"`
	Output   []byte `json:"output"`
	Error    string `json:"error,omitempty"`
	Found    bool   `json:"found,omitempty"`
	Start    int    `json:"start,omitempty"`
	End      int    `json:"end,omitempty"`
	Standard bool   `json:"standard,omitempty"`
	NS       int64  `json:"ns,omitempty"`
}

func fail(r *response, err error) *response {
	r.OK = false
	r.Error = err.Error()
	return r
}

// transform runs one in-place Value operation on a parse of in.
func transform(op string, in, patch []byte) (hujson.Value, error) {
	v, err := hujson.Parse(in)
	if err != nil {
		return v, err
	}
	switch op {
	case "parse":
	case "standardize":
		v.Standardize()
	case "minimize":
		v.Minimize()
	case "format":
		v.Format()
	case "patch":
		err = v.Patch(patch)
	default:
		err = fmt.Errorf("hujsonpeer: unknown op %q", op)
	}
	return v, err
}

func timed(op string, in, patch []byte, repeat int) (int64, error) {
	if repeat < 1 {
		repeat = 1
	}
	// One untimed run checks the input and warms caches.
	if _, err := transform(op, in, patch); err != nil {
		return 0, err
	}
	var total time.Duration
	for i := 0; i < repeat; i++ {
		buf := append([]byte(nil), in...) // Parse shares memory with its input; Standardize writes it
		start := time.Now()
		v, _ := transform(op, buf, patch)
		_ = v.Pack()
		total += time.Since(start)
	}
	return total.Nanoseconds() / int64(repeat), nil
}

func answer(req *request) *response {
	r := &response{OK: true}
	switch req.Op {
	case "parse", "standardize", "minimize", "format", "patch":
		v, err := transform(req.Op, req.Input, req.Patch)
		if err != nil {
			if req.Op == "patch" && v.Value != nil {
				r.Output = v.Pack()
			}
			return fail(r, err)
		}
		r.Output = v.Pack()
	case "find":
		v, err := hujson.Parse(req.Input)
		if err != nil {
			return fail(r, err)
		}
		if f := v.Find(req.Pointer); f != nil {
			r.Found, r.Output, r.Start, r.End = true, f.Pack(), f.StartOffset, f.EndOffset
		}
	case "isstandard":
		v, err := hujson.Parse(req.Input)
		if err != nil {
			return fail(r, err)
		}
		r.Standard = v.IsStandard()
	case "time-parse", "time-format", "time-standardize", "time-minimize", "time-patch":
		ns, err := timed(req.Op[len("time-"):], req.Input, req.Patch, req.Repeat)
		if err != nil {
			return fail(r, err)
		}
		r.NS = ns
	default:
		return fail(r, fmt.Errorf("hujsonpeer: unknown op %q", req.Op))
	}
	return r
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(out)
	dec := json.NewDecoder(in)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if err.Error() != "EOF" {
				fmt.Fprintln(os.Stderr, "hujsonpeer:", err)
				os.Exit(2)
			}
			break
		}
		if err := enc.Encode(answer(&req)); err != nil {
			fmt.Fprintln(os.Stderr, "hujsonpeer:", err)
			os.Exit(2)
		}
		// Answer each request at once: the client may wait for it before sending the next.
		if err := out.Flush(); err != nil {
			os.Exit(2)
		}
	}
	out.Flush()
}
