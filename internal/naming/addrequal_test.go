package naming

import (
	"errors"
	"testing"
)

func TestAddrEqual(t *testing.T) {
	base := func() Addr {
		return Addr{State: AddrBound, Addrs: []Address{
			{Host: "127.0.0.1", Port: 8080, Weight: 1},
			{Host: "127.0.0.2", Port: 8080, Weight: 1, Meta: map[string]any{"shard": 2, "m": map[string]string{"k": "v"}}},
		}}
	}
	if !AddrEqual(base(), base()) {
		t.Fatal("AddrEqual: identical address sets differ")
	}
	if !AddrEqual(Addr{State: AddrFailed, Err: errors.New("boom")}, Addr{State: AddrFailed, Err: errors.New("boom")}) {
		t.Error("AddrEqual: failures with the same error text differ")
	}
	if !AddrEqual(Addr{State: AddrBound}, Addr{State: AddrBound, Addrs: []Address{}}) {
		t.Error("AddrEqual: a nil and an empty address list differ")
	}
	for name, change := range map[string]func(*Addr){
		"state":        func(a *Addr) { a.State = AddrNeg },
		"error":        func(a *Addr) { a.Err = errors.New("x") },
		"set meta":     func(a *Addr) { a.Meta = map[string]any{"k": 1} },
		"length":       func(a *Addr) { a.Addrs = a.Addrs[:1] },
		"order":        func(a *Addr) { a.Addrs[0], a.Addrs[1] = a.Addrs[1], a.Addrs[0] },
		"host":         func(a *Addr) { a.Addrs[0].Host = "127.0.0.9" },
		"port":         func(a *Addr) { a.Addrs[0].Port = 9090 },
		"weight":       func(a *Addr) { a.Addrs[0].Weight = 2 },
		"meta value":   func(a *Addr) { a.Addrs[1].Meta = map[string]any{"shard": 3, "m": map[string]string{"k": "v"}} },
		"nested meta":  func(a *Addr) { a.Addrs[1].Meta = map[string]any{"shard": 2, "m": map[string]string{"k": "w"}} },
		"meta vs none": func(a *Addr) { a.Addrs[0].Meta = map[string]any{"ssl": true} },
	} {
		b := base()
		change(&b)
		if AddrEqual(base(), b) || AddrEqual(b, base()) {
			t.Errorf("AddrEqual: a change of %s went unnoticed", name)
		}
	}
}
