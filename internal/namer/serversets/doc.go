// Package serversets is the io.l5d.serversets namer (Finagle/Twitter
// serversets in ZooKeeper) and the io.l5d.zkLeader namer (the leader of a
// ZooKeeper group), both on internal/zk.
//
// /#/io.l5d.serversets/discovery/prod/web/rest binds the id
// /#/io.l5d.serversets/discovery/prod/web with residual /rest when the
// serverset /discovery/prod/web has live members, trying the longest
// prefix first as Linkerd does (see Namer.Lookup).
//
//   - A serverset's members are its children named member_<seq>; their
//     data is the ServiceInstance JSON ({"serviceEndpoint": {host, port},
//     "additionalEndpoints": {name: {host, port}}, "status": "ALIVE", ...}).
//     Only ALIVE members count; "web:admin" as the last element selects the
//     additional endpoint "admin". Host names are resolved.
//   - No live member, or no such znode, is negative (Finagle's zk2
//     resolver), so dtab fall-backs apply; the answer changes as members
//     come and go.
//   - io.l5d.zkLeader binds the member with the lowest sequence number,
//     whose data is host:port.
//   - Each watched znode is one loop, shared by every lookup reading it and
//     stopped with its last watcher; nothing is asked of ZooKeeper for
//     names nobody watches.
//   - ZooKeeper unreachable keeps the last answer (the error shows on the
//     namer's state page and in the log); a znode never read fails until
//     ZooKeeper answers.
//   - AnnouncerConfig/Announcer join servers to serversets (Linkerd's
//     io.l5d.serversets announcer), registered as a naming.AnnouncerConfig
//     that routers build from their `announcers:` entries.
package serversets
