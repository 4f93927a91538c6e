// Package dnssrv is the io.l5d.dnssrv namer: service discovery from DNS
// SRV records.
//
// /#/io.l5d.dnssrv/_http._tcp.web.example./rest binds the id
// /#/io.l5d.dnssrv/_http._tcp.web.example. with residual /rest. The SRV
// records of the name are asked for, and their targets' A and AAAA
// records, when the lookup (or the bound name's address set) is first
// watched, then every refreshIntervalSeconds while it stays watched;
// nothing is polled for names nobody watches.
//
//   - NXDOMAIN, or a name without SRV records, is negative, so dtab
//     fall-backs apply.
//   - Only the lowest-priority group of records with a resolvable target is
//     used; the others are fall-backs (RFC 2782). Targets "." and targets
//     that do not exist are skipped.
//   - Each address is weighted by its record's SRV weight (a target's
//     weight is shared by its IPs; weight 0 among non-zero weights is a
//     very small weight; all zero is equal weights).
//   - A DNS failure (unreachable server, timeout, SERVFAIL) keeps the last
//     answer; a name that never resolved fails until it does.
//   - Answers and address sets are published only when they change.
package dnssrv
