package serversets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MemberPrefix starts the name of every member znode of a serverset or
// leader group (Twitter commons' Group: member_<10-digit sequence>).
const MemberPrefix = "member_"

// StatusAlive is the status of a member that serves.
const StatusAlive = "ALIVE"

// Endpoint is a host and port of a serverset member.
type Endpoint struct {
	Host string
	Port int
}

// Member is the JSON data of a serverset member znode (Twitter commons'
// ServiceInstance):
//
//	{"serviceEndpoint": {"host": "10.0.0.1", "port": 8080},
//	 "additionalEndpoints": {"admin": {"host": "10.0.0.1", "port": 9990}},
//	 "status": "ALIVE", "shard": 0}
type Member struct {
	ServiceEndpoint     Endpoint
	AdditionalEndpoints map[string]Endpoint
	// Status is ALIVE, DEAD, STARTING, STOPPING, STOPPED, WARNING... ("" when absent).
	Status string
	// Shard is the member's shard number, when it has one.
	Shard *int
}

// Endpoint returns the endpoint named name ("" is the service endpoint).
func (m Member) Endpoint(name string) (Endpoint, bool) {
	if name == "" {
		return m.ServiceEndpoint, true
	}
	e, ok := m.AdditionalEndpoints[name]
	return e, ok
}

type jsonEndpoint struct {
	Host *string          `json:"host"`
	Port *json.RawMessage `json:"port"`
}

type jsonMember struct {
	ServiceEndpoint     *jsonEndpoint           `json:"serviceEndpoint"`
	AdditionalEndpoints map[string]jsonEndpoint `json:"additionalEndpoints"`
	Status              *string                 `json:"status"`
	Shard               *json.RawMessage        `json:"shard"`
}

// MaxMemberSize bounds the data ParseMember accepts (a member is a few
// hundred bytes; ZooKeeper's own limit is 1 MiB).
const MaxMemberSize = 64 << 10

// ParseMember decodes a member znode's JSON. It refuses, with an error
// naming the field, data that is not a JSON object, a missing or invalid
// serviceEndpoint, an additional endpoint without a valid host and port,
// a status that is not a string and a shard that is not an integer.
// Unknown fields are ignored (writers add their own).
func ParseMember(data []byte) (Member, error) {
	var m Member
	if len(data) > MaxMemberSize {
		return m, fmt.Errorf("member data is %d bytes, more than %d", len(data), MaxMemberSize)
	}
	if !utf8.Valid(data) {
		return m, errors.New("member data is not UTF-8 text")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return m, errors.New("member data is not a JSON object")
	}
	var j jsonMember
	if err := json.Unmarshal(trimmed, &j); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return m, fmt.Errorf("%s: expected %s, not a JSON %s", te.Field, jsonTypeName(te.Type.String()), te.Value)
		}
		return m, fmt.Errorf("member data is not valid JSON: %v", err)
	}
	if j.ServiceEndpoint == nil {
		return m, errors.New("serviceEndpoint: required")
	}
	ep, err := j.ServiceEndpoint.parse("serviceEndpoint")
	if err != nil {
		return m, err
	}
	m.ServiceEndpoint = ep
	if len(j.AdditionalEndpoints) > 0 {
		m.AdditionalEndpoints = make(map[string]Endpoint, len(j.AdditionalEndpoints))
		for name, je := range j.AdditionalEndpoints {
			field := "additionalEndpoints." + strconv.Quote(name)
			if name == "" {
				return Member{}, fmt.Errorf("%s: empty endpoint name", field)
			}
			ep, err := je.parse(field)
			if err != nil {
				return Member{}, err
			}
			m.AdditionalEndpoints[name] = ep
		}
	}
	if j.Status != nil {
		m.Status = *j.Status
	}
	if j.Shard != nil && string(*j.Shard) != "null" {
		n, err := strconv.Atoi(string(*j.Shard))
		if err != nil {
			return Member{}, fmt.Errorf("shard: %s is not an integer", truncate(string(*j.Shard)))
		}
		m.Shard = &n
	}
	return m, nil
}

func (je jsonEndpoint) parse(field string) (Endpoint, error) {
	if je.Host == nil || strings.TrimSpace(*je.Host) == "" {
		return Endpoint{}, fmt.Errorf("%s.host: required", field)
	}
	host := strings.TrimSpace(*je.Host)
	if strings.ContainsAny(host, " \t\r\n/,") {
		return Endpoint{}, fmt.Errorf("%s.host: %q is not a host name or IP address", field, truncate(host))
	}
	if je.Port == nil {
		return Endpoint{}, fmt.Errorf("%s.port: required", field)
	}
	raw := string(*je.Port)
	port, err := strconv.Atoi(raw)
	if err != nil || port < 1 || port > 65535 {
		return Endpoint{}, fmt.Errorf("%s.port: %s is not a TCP port (1-65535)", field, truncate(raw))
	}
	return Endpoint{Host: host, Port: port}, nil
}

// jsonTypeName names a Go type the way a JSON writer thinks of it.
func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "serversets."):
		return "an object"
	}
	return goType
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ParseLeaderData decodes the data of an io.l5d.zkLeader group member:
// one or more host:port, separated by commas or spaces.
func ParseLeaderData(data []byte) ([]Endpoint, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("leader data is not UTF-8 text")
	}
	fields := strings.FieldsFunc(string(data), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) == 0 {
		return nil, errors.New("leader data is empty: want host:port")
	}
	out := make([]Endpoint, 0, len(fields))
	for _, f := range fields {
		host, port, err := net.SplitHostPort(f)
		if err != nil {
			return nil, fmt.Errorf("leader data %q: %q is not host:port", truncate(string(data)), truncate(f))
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 || host == "" {
			return nil, fmt.Errorf("leader data %q: %q is not host:port with a TCP port", truncate(string(data)), truncate(f))
		}
		out = append(out, Endpoint{Host: host, Port: p})
	}
	return out, nil
}

// memberSeq returns the sequence number of a member znode name
// (member_0000000042 → 42), or false for a name that is not a member.
func memberSeq(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, MemberPrefix)
	if !ok || rest == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
