package mesh

import (
	"bytes"
	"testing"
)

// every returns a fresh value of each message type.
func every() []Message {
	return []Message{
		new(Path), new(NameTree), new(Dtab), new(Dentry), new(VersionedDtab),
		new(BindReq), new(BoundTreeRsp), new(ReplicasReq), new(Endpoint), new(Replicas),
		new(DtabReq), new(DtabRsp), new(DelegateTreeReq), new(DelegateTreeRsp), new(DelegateTree),
		new(ReadDtabReq), new(ReadDtabRsp), new(ShowDtabReq), new(ShowDtabRsp),
		new(ReadPathReq), new(ReadPathRsp), new(ShowPathReq), new(ShowPathRsp),
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// whatever decodes re-encodes to bytes that decode to the same encoding
// (encode ∘ decode is idempotent), and the converters to Linnet's types
// accept or refuse it without panicking. Seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(Marshal(&BindReq{Root: path("default"), Name: path("svc", "hello"), Dtab: dtabToWire(nil)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range every() {
			if err := m.UnmarshalWire(data); err != nil {
				continue
			}
			once := Marshal(m)
			if err := m.UnmarshalWire(once); err != nil {
				t.Fatalf("%T: re-decoding its own encoding %x: %v", m, once, err)
			}
			if twice := Marshal(m); !bytes.Equal(once, twice) {
				t.Fatalf("%T: encoding not stable:\n %x\n %x", m, once, twice)
			}
			switch m := m.(type) {
			case *NameTree:
				_, _ = nameTreeFromWire(m)
			case *Dtab:
				_, _ = dtabFromWire(m)
			case *Replicas:
				_ = addrFromReplicas(m)
			case *BindReq:
				_, _, _, _ = bindArgs(m)
			}
		}
	})
}
