package zk

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/config"
)

// HostPort is one entry of a `zkAddrs` list: {host: zk1, port: 2181}.
// Linkerd configs often quote the port (port: '2181'); both forms decode.
type HostPort struct {
	Host string `yaml:"host"`
	Port Port   `yaml:"port"`
}

// Port is a TCP port given as a YAML integer or a quoted decimal string,
// by the config package's rule for every number (Raw.Int).
type Port int

// UnmarshalConfig implements config.Unmarshaler.
func (p *Port) UnmarshalConfig(r config.Raw) error {
	s, ok := r.Scalar()
	if !ok {
		return r.Errorf("expected a port number")
	}
	n, ok := r.Int()
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return r.Errorf("%q is not a port number", s)
	}
	*p = Port(n)
	return nil
}

// String returns "host:port" (IPv6 hosts bracketed).
func (h HostPort) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port))) }

// ValidateAddrs checks a zkAddrs list; field is its key ("zkAddrs").
func ValidateAddrs(field string, addrs []HostPort) error {
	if len(addrs) == 0 {
		return config.FieldError(field, "required: at least one {host, port} of a ZooKeeper server")
	}
	for i, a := range addrs {
		switch {
		case strings.TrimSpace(a.Host) == "":
			return config.FieldError(fmt.Sprintf("%s[%d].host", field, i), "required")
		case strings.ContainsAny(a.Host, " ,/"):
			return config.FieldError(fmt.Sprintf("%s[%d].host", field, i), "%q is not a host name or IP address", a.Host)
		case a.Port == 0:
			return config.FieldError(fmt.Sprintf("%s[%d].port", field, i), "0 is not a TCP port (1-65535); give ZooKeeper's client port (e.g. 2181), it has no default")
		case a.Port < 1 || a.Port > 65535:
			return config.FieldError(fmt.Sprintf("%s[%d].port", field, i), "%d is not a TCP port (1-65535)", a.Port)
		}
	}
	return nil
}

// Servers returns the "host:port" strings of addrs.
func Servers(addrs []HostPort) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// AuthInfo is the `authInfo` block: credentials added to the session
// (ZooKeeper's addauth), e.g. {scheme: digest, auth: "user:password"}.
type AuthInfo struct {
	Scheme string `yaml:"scheme"`
	Auth   string `yaml:"auth"`
}

// Validate checks the block; field is its key ("authInfo").
func (a *AuthInfo) Validate(field string) error {
	if a == nil {
		return nil
	}
	if strings.TrimSpace(a.Scheme) == "" {
		return config.FieldError(field+".scheme", "required (e.g. digest)")
	}
	if a.Auth == "" {
		// Linkerd's docs mark it required; an empty credential would make
		// ZooKeeper fail the session's authentication, not name the field.
		return config.FieldError(field+".auth", "required (for scheme digest, \"user:password\")")
	}
	if a.Scheme == "digest" && !strings.Contains(a.Auth, ":") {
		// ZooKeeper's digest provider splits the credential at its first
		// ':'; without one the server drops the session.
		return config.FieldError(field+".auth", "scheme digest takes \"user:password\" (no ':' in the value given)")
	}
	return nil
}

// ACL is one entry of an `acls` list: {scheme: world, id: anyone, perms: crwda}.
type ACL struct {
	Scheme string `yaml:"scheme"`
	ID     string `yaml:"id"`
	Perms  string `yaml:"perms"`
}

// ParsePerms turns a permission string of the letters c (create), r
// (read), w (write), d (delete) and a (admin), in any order, into
// ZooKeeper's permission bits. Letters are case-insensitive; a repeated
// letter, any other character or an empty string is an error naming it.
func ParsePerms(s string) (int32, error) {
	if s == "" {
		return 0, fmt.Errorf("empty: give some of the letters c, r, w, d, a (e.g. crwda)")
	}
	var perms int32
	for i, r := range s {
		var bit int32
		switch r {
		case 'c', 'C':
			bit = gozk.PermCreate
		case 'r', 'R':
			bit = gozk.PermRead
		case 'w', 'W':
			bit = gozk.PermWrite
		case 'd', 'D':
			bit = gozk.PermDelete
		case 'a', 'A':
			bit = gozk.PermAdmin
		default:
			return 0, fmt.Errorf("%q: letter %q at %d is not a permission (c create, r read, w write, d delete, a admin)", s, r, i)
		}
		if perms&bit != 0 {
			return 0, fmt.Errorf("%q: letter %q repeated", s, r)
		}
		perms |= bit
	}
	return perms, nil
}

// ParseACLs validates an acls list and converts it; field is its key
// ("acls"). An empty list is ZooKeeper's open ACL (world:anyone:crwda).
func ParseACLs(field string, acls []ACL) ([]gozk.ACL, error) {
	if len(acls) == 0 {
		return gozk.WorldACL(gozk.PermAll), nil
	}
	out := make([]gozk.ACL, len(acls))
	for i, a := range acls {
		at := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(a.Scheme) == "" {
			return nil, config.FieldError(at+".scheme", "required (world, digest, ip, auth, ...)")
		}
		if a.ID == "" && a.Scheme != "auth" {
			return nil, config.FieldError(at+".id", "required for scheme %q (e.g. anyone for world)", a.Scheme)
		}
		p, err := ParsePerms(a.Perms)
		if err != nil {
			return nil, config.FieldError(at+".perms", "%v", err)
		}
		out[i] = gozk.ACL{Scheme: a.Scheme, ID: a.ID, Perms: p}
	}
	return out, nil
}

// ValidatePath checks a znode path given in configuration (e.g.
// pathPrefix): absolute, no empty, "." or ".." segment, no trailing slash
// (except the root itself).
func ValidatePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	if p == "/" {
		return nil
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q must not end with /", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if err := ValidateNodeName(seg); err != nil {
			return fmt.Errorf("%q: %v", p, err)
		}
	}
	return nil
}

// ValidateNodeName checks one znode name (a path segment): ZooKeeper
// refuses empty names, "." and "..", and some characters.
func ValidateNodeName(s string) error {
	switch s {
	case "":
		return fmt.Errorf("empty znode name")
	case ".", "..":
		return fmt.Errorf("znode name %q is reserved", s)
	}
	if strings.Contains(s, "/") {
		return fmt.Errorf("znode name %q contains /", s)
	}
	for i, r := range s {
		if r == 0 || (r > 0 && r < 0x20) || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfff0 && r <= 0xffff) {
			return fmt.Errorf("znode name %q: character %U at %d is not allowed by ZooKeeper", s, r, i)
		}
	}
	return nil
}
