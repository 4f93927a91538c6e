// Package curator is the io.l5d.curator namer: services registered with
// Apache Curator's service discovery (curator-x-discovery) in ZooKeeper,
// on internal/zk.
//
//	namers:
//	- kind: io.l5d.curator
//	  experimental: true      # required, as Linkerd required it
//	  zkAddrs: [{host: 127.0.0.1, port: 2181}]
//	  basePath: /services     # default /
//
// Curator keeps one znode per service, <basePath>/<service name>, with one
// child per instance, named by the instance id, whose data is the
// instance as JSON (Curator's JsonInstanceSerializer):
//
//	{"name": "web", "id": "5a1f...", "address": "10.0.0.7", "port": 8080,
//	 "sslPort": null, "payload": null, "registrationTimeUTC": 1700000000000,
//	 "serviceType": "DYNAMIC", "uriSpec": null}
//
// /#/io.l5d.curator/<service>/<rest...> binds the id
// /#/io.l5d.curator/<service> with residual /<rest...>, as Linkerd's
// CuratorNamer. Each instance is one address: address with sslPort when
// the instance has one (its address then carries the metadata ssl: true),
// else with port; every serviceType counts (Curator's ServiceCache, which
// Linkerd read, lists them all). A host name is resolved.
//
//   - A service whose znode does not exist, or that has no usable
//     instance, is negative, so that dtab fall-backs apply (Linkerd bound
//     it to an empty set); it binds as soon as an instance registers.
//   - Instances joining, leaving (an ephemeral instance goes with its
//     session) or changing are followed; data that is not a usable
//     instance leaves that instance out, logged once, naming the field.
//   - Each watched service is one loop, shared by every lookup reading it
//     and stopped with its last watcher.
//   - ZooKeeper unreachable keeps the last answer (the error shows on
//     /namer_state/<prefix>.json and in the log); a service never read
//     fails until ZooKeeper answers.
package curator
