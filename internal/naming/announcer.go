package naming

import (
	"log/slog"
	"net/netip"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// AnnouncerConfig is one entry of a router's `announcers:` list (Linkerd's
// AnnouncerConfig). Each kind registers with
// config.Register[naming.AnnouncerConfig]. A server's `announce:` name
// /#/<prefix>/... goes to every announcer whose MountPrefix it starts
// with, as in Linkerd.
type AnnouncerConfig interface {
	// MountPrefix returns /#/<prefix> (`prefix`; default /<kind>).
	MountPrefix() dtab.Path
	// StartAnnouncer builds the announcer. It must not wait for its
	// registry: a registry that is down at start must not keep a router
	// from serving.
	StartAnnouncer(log *slog.Logger) (Announcer, error)
}

// Announcer registers a router's servers in a service registry.
type Announcer interface {
	// Announce registers addr under name (a path that starts with the
	// announcer's MountPrefix). It returns at once and keeps the
	// registration up, retrying in the background, until the
	// Announcement is closed. It fails only on an invalid name or address.
	Announce(name dtab.Path, addr netip.AddrPort) (Announcement, error)
	// Close withdraws every announcement and releases the registry.
	Close() error
}

// Announcement is one address registered under one name.
type Announcement interface {
	// Status describes the registration now (logs, admin pages).
	Status() AnnouncementStatus
	// Close withdraws the registration. It is idempotent.
	Close() error
}

// AnnouncementStatus is what an Announcement reports.
type AnnouncementStatus struct {
	// Announced tells that the registry holds the registration now.
	Announced bool
	// Target is where the registration goes (a serverset's znode path).
	Target string
	// Entry is the registration itself while Announced (a member znode).
	Entry string
	// Err is the last failure to register, while not Announced.
	Err string
}
