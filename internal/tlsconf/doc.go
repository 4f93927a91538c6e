// Package tlsconf builds the *tls.Config of router servers and clients
// from Linkerd's `tls` blocks (spec/config.md §6.3): certificates and keys
// read from PEM files (PKCS#8, PKCS#1 or SEC1 keys), CA pools, the client's
// commonName (used both as SNI and as the name the server certificate must
// carry, with {var} substitution for per-client names), client
// certificates, protocol versions and disableValidation.
//
// Files are read when a Server or Client is built and again on Reload; a
// reload that fails keeps the previous material, so a half-written
// certificate never takes a listener down. Configs handed out before a
// reload pick up the new material on their next handshake: they resolve
// certificates and pools through callbacks, never by copy.
//
// ServerConfig is the server `tls` block itself, shared by every server
// that takes one. Apart from internal/config (to decode and validate that
// block), the package depends on the standard library only.
package tlsconf
