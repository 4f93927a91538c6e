// Package plugins links every namer, storage backend, telemeter and
// interpreter into the binary by importing them for their init
// registrations (Caddy's modules/standard).
package plugins
