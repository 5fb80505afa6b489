// Command porcupine-bench checks exported histories with Porcupine v1.3.0 and prints, for each
// file, one JSON line: {"file", "ops", "ms", "ok"}. ms is the best of -repeat runs of
// porcupine.CheckOperations (parsing excluded). The models are those of Porcupine's own test
// suite (etcd cas-register and kv), rewritten here because test code is not importable.
//
// Input files are written by run.py: {"model": "cas-register"|"kv", "ops": [{"client", "call",
// "return" (-1 = crashed: returns at +infinity), "input", "output"}]}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

type jsonOp struct {
	Client int             `json:"client"`
	Call   int64           `json:"call"`
	Return int64           `json:"return"`
	Input  json.RawMessage `json:"input"`
	Output json.RawMessage `json:"output"`
}

type jsonHistory struct {
	Model string   `json:"model"`
	Ops   []jsonOp `json:"ops"`
}

type etcdInput struct {
	Op   uint8 `json:"op"` // 0 read, 1 write, 2 cas
	Arg1 int   `json:"arg1"`
	Arg2 int   `json:"arg2"`
}

type etcdOutput struct {
	Ok      bool `json:"ok"`
	Exists  bool `json:"exists"`
	Value   int  `json:"value"`
	Unknown bool `json:"unknown"`
}

// Porcupine's etcdModel (porcupine_test.go, v1.3.0).
var etcdModel = porcupine.Model{
	Init: func() interface{} { return -1000000 }, // -1000000 corresponds with nil
	Step: func(state interface{}, input interface{}, output interface{}) (bool, interface{}) {
		st := state.(int)
		inp := input.(etcdInput)
		out := output.(etcdOutput)
		if inp.Op == 0 {
			ok := (!out.Exists && st == -1000000) || (out.Exists && st == out.Value) || out.Unknown
			return ok, state
		} else if inp.Op == 1 {
			return true, inp.Arg1
		}
		ok := (inp.Arg1 == st && out.Ok) || (inp.Arg1 != st && !out.Ok) || out.Unknown
		result := st
		if inp.Arg1 == st {
			result = inp.Arg2
		}
		return ok, result
	},
}

type kvInput struct {
	Op    uint8  `json:"op"` // 0 get, 1 put, 2 append
	Key   string `json:"key"`
	Value string `json:"value"`
}

type kvOutput struct {
	Value   string `json:"value"`
	Unknown bool   `json:"unknown"`
}

// Porcupine's kvModel (porcupine_test.go, v1.3.0), plus an unknown output for crashed gets.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		m := make(map[string][]porcupine.Operation)
		for _, v := range history {
			key := v.Input.(kvInput).Key
			m[key] = append(m[key], v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ret := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			ret = append(ret, m[k])
		}
		return ret
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		inp := input.(kvInput)
		out := output.(kvOutput)
		st := state.(string)
		if inp.Op == 0 {
			return out.Unknown || out.Value == st, state
		} else if inp.Op == 1 {
			return true, inp.Value
		}
		return true, st + inp.Value
	},
	Hash: func(state interface{}) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
}

func load(path string) (porcupine.Model, []porcupine.Operation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return porcupine.Model{}, nil, err
	}
	var h jsonHistory
	if err := json.Unmarshal(raw, &h); err != nil {
		return porcupine.Model{}, nil, err
	}
	ops := make([]porcupine.Operation, 0, len(h.Ops))
	for _, o := range h.Ops {
		ret := o.Return
		if ret < 0 {
			ret = math.MaxInt64
		}
		var in, out interface{}
		switch h.Model {
		case "cas-register":
			var i etcdInput
			var r etcdOutput
			if err := json.Unmarshal(o.Input, &i); err != nil {
				return porcupine.Model{}, nil, err
			}
			if err := json.Unmarshal(o.Output, &r); err != nil {
				return porcupine.Model{}, nil, err
			}
			in, out = i, r
		case "kv":
			var i kvInput
			var r kvOutput
			if err := json.Unmarshal(o.Input, &i); err != nil {
				return porcupine.Model{}, nil, err
			}
			if err := json.Unmarshal(o.Output, &r); err != nil {
				return porcupine.Model{}, nil, err
			}
			in, out = i, r
		default:
			return porcupine.Model{}, nil, fmt.Errorf("unknown model %q", h.Model)
		}
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: in, Call: o.Call, Output: out, Return: ret})
	}
	if h.Model == "kv" {
		return kvModel, ops, nil
	}
	return etcdModel, ops, nil
}

func main() {
	repeat := flag.Int("repeat", 3, "runs per file; the best time is reported")
	flag.Parse()
	enc := json.NewEncoder(os.Stdout)
	for _, path := range flag.Args() {
		model, ops, err := load(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "porcupine-bench: %s: %v\n", path, err)
			os.Exit(2)
		}
		best := math.MaxFloat64
		ok := false
		for r := 0; r < *repeat; r++ {
			start := time.Now()
			ok = porcupine.CheckOperations(model, ops)
			ms := float64(time.Since(start).Nanoseconds()) / 1e6
			if ms < best {
				best = ms
			}
		}
		_ = enc.Encode(map[string]interface{}{"file": path, "ops": len(ops), "ms": best, "ok": ok})
	}
}
