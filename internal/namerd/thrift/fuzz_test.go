package thrift

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
)

// fuzzServer is one server shared by every input of a fuzz run.
func fuzzServer(f *testing.F) *Server {
	prefix := dtab.Path{"#", "io.l5d.fs"}
	fs := naming.NewStaticNamer(prefix, map[string][]naming.Address{"web": {{Host: "127.0.0.1", Port: 1, Weight: 1}}})
	cfg := InterfaceConfig{}
	cfg.SetDefaults()
	s := NewServer(Options{
		Store:       memory.New(map[string]dtab.Dtab{"default": dtab.MustParse("/svc => /#/io.l5d.fs")}),
		Interpreter: naming.NewInterpreter([]naming.MountedNamer{{Prefix: prefix, Namer: fs}}),
		Config:      cfg,
	})
	f.Cleanup(func() { _ = s.Close() })
	return s
}

func frame(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

// FuzzServerRequest feeds arbitrary bytes to the server's decoders: as a
// Thrift call, and as a whole connection's byte stream (mux or framed).
// Nothing may panic, and the connection handler must end once the peer
// has hung up.
func FuzzServerRequest(f *testing.F) {
	bind, _ := encodeMessage(MethodBind, thrift.CALL, 1, 1, &BindReq{Name: NameRef{Name: [][]byte{[]byte("svc"), []byte("web")}, Ns: "default"}})
	addr, _ := encodeMessage(MethodAddr, thrift.CALL, 2, 1, &AddrReq{Name: NameRef{Name: [][]byte{[]byte("#"), []byte("io.l5d.fs"), []byte("web")}}})
	dt, _ := encodeMessage(MethodDtab, thrift.CALL, 3, 1, &DtabReq{Ns: "default"})
	del, _ := encodeMessage(MethodDelegate, thrift.CALL, 4, 1, &DelegateReq{Delegation: Delegation{Ns: "default", Tree: DelegateTree{
		Root: DelegateNode{Path: [][]byte{[]byte("svc")}, Dentry: nopDentry, Contents: DelegateContents{Kind: DelegatePathLeaf, PathLeaf: [][]byte{[]byte("svc"), []byte("web")}}},
	}}})
	f.Add(del)
	f.Add(frame(del))
	f.Add(bind)
	f.Add(addr)
	f.Add(dt)
	f.Add(frame(bind))
	mux := appendMux(nil, muxBadRerr, tinitTag, []byte(canTinit))
	mux = appendMux(mux, muxTinit, tinitTag, initBody(1, nil))
	mux = appendMux(mux, muxTdispatch, 2, tdispatchHeader, bind)
	mux = appendMux(mux, muxTdispatch, 3, tdispatchHeader, addr)
	mux = appendMux(mux, muxTping, 4)
	mux = appendMux(mux, muxBadTdiscard, 0, []byte{0, 0, 2}, []byte("x"))
	f.Add(mux)
	f.Add(appendMux(nil, muxTreq, 5, []byte{1, 1, 2, 'a', 'b'}, dt))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeCall(data); err == nil && c == nil {
			t.Fatal("nil call without an error")
		}
		// The client's decoders see server bytes.
		_ = decodeReply(data, MethodBind, &Bound{}, &BindFailure{})
		_ = decodeReply(data, MethodAddr, &Addr{}, &AddrFailure{})
		_ = decodeReply(data, MethodDelegate, &Delegation{}, &DelegationFailure{})
		_, _ = parseTdispatch(data)
		_, _, _ = parseRdispatch(data)
		_, _, _ = parseInit(data)

		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serveConn(server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = client.Write(data)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connection handler still running after the peer hung up")
		}
	})
}
