package thrift

import (
	"fmt"
	"maps"
	"slices"

	"github.com/apache/thrift/lib/go/thrift"
)

// namer.thrift flattens both of its trees, BoundTree and DelegateTree, the
// same way: a struct of the root node (field 1) and the other nodes by id
// (field 2: map<i32, node struct>), which nodes refer to by id.

// writeTree encodes a flattened tree struct, the nodes in id order; node
// encodes one node struct.
func writeTree[N any](e *enc, root N, nodes map[int32]N, node func(N)) {
	e.begin()
	e.field(1, thrift.STRUCT)
	node(root)
	e.field(2, thrift.MAP)
	e.keep(e.p.WriteMapBegin(e.ctx, thrift.I32, thrift.STRUCT, len(nodes)))
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		e.keep(e.p.WriteI32(e.ctx, id))
		node(nodes[id])
	}
	e.end()
}

// readTree decodes a flattened tree struct into root and nodes; node
// decodes one node struct.
func readTree[N any](d *dec, root *N, nodes *map[int32]N, node func(*N) error) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && t == thrift.STRUCT:
			return true, node(root)
		case id == 2 && t == thrift.MAP:
			kt, vt, n, err := d.p.ReadMapBegin(d.ctx)
			if err != nil {
				return true, err
			}
			if kt != thrift.I32 || vt != thrift.STRUCT {
				return true, fmt.Errorf("nodes: map<%s,%s>, want map<i32,struct>", kt, vt)
			}
			*nodes = make(map[int32]N, min(n, 64))
			for range n {
				k, err := d.p.ReadI32(d.ctx)
				if err != nil {
					return true, err
				}
				var v N
				if err := node(&v); err != nil {
					return true, err
				}
				(*nodes)[k] = v
			}
			return true, d.p.ReadMapEnd(d.ctx)
		}
		return false, nil
	})
}
