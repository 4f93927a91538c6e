// Package namerd is the namerd server: it keeps dtabs in a storage.Store,
// resolves names with its own namers, and serves the io.l5d.httpController
// interface (spec/namerd-api.md) and the namerd admin server
// (spec/headers-admin.md §5.3).
//
// The HTTP controller has one file per resource, like Linkerd's
// namerd/iface/control-http: dtabs.go, bind.go (bind, addr, resolve),
// delegate.go, boundnames.go. Streaming (?watch=true) responses share
// stream.go: documents are rendered from the latest state only, so a slow
// reader makes intermediate states collapse instead of buffering them, and
// every underlying watch is released when the client goes away.
package namerd
