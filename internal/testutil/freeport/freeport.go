// Package freeport finds loopback TCP ports for the processes tests start
// (the binary under test, etcd, Consul, dnsmasq, kube-apiserver...).
//
// A port is drawn at random below Linux's ephemeral range (32768-60999)
// and checked free, rather than asked of the kernel with :0: a port the
// kernel hands out is soon handed out again, to the next listener or
// outgoing connection of any test running in parallel, which then wins
// the race to bind it ("address already in use"). Random ports from a
// range the kernel never assigns collide only with each other, rarely;
// and never within one test process, which hands each port out once (a
// test that draws an admin port and a server port before starting the
// process that binds them once got the same port twice).
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{} // ports this process handed out
)

// Port returns a loopback TCP port that was free a moment ago and that
// this process has not handed out before.
func Port() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if given[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		given[port] = true
		return port, nil
	}
	return 0, errors.New("no free loopback port found in 20000-31999")
}
