package curator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Instance is what the namer uses of a Curator ServiceInstance (the JSON
// data of an instance znode, written by Curator's JsonInstanceSerializer).
type Instance struct {
	Name    string
	ID      string
	Address string
	// Port and SSLPort are 0 when absent (null).
	Port    int
	SSLPort int
	// ServiceType is DYNAMIC, STATIC, PERMANENT or DYNAMIC_SEQUENTIAL
	// ("" when absent); every type is an instance to route to.
	ServiceType string
}

// Target returns the port clients use, as Linkerd chose it: sslPort when
// the instance has one, else port; ssl tells which.
func (i Instance) Target() (port int, ssl bool) {
	if i.SSLPort != 0 {
		return i.SSLPort, true
	}
	return i.Port, false
}

type jsonInstance struct {
	Name        *json.RawMessage `json:"name"`
	ID          *json.RawMessage `json:"id"`
	Address     *json.RawMessage `json:"address"`
	Port        *json.RawMessage `json:"port"`
	SSLPort     *json.RawMessage `json:"sslPort"`
	ServiceType *json.RawMessage `json:"serviceType"`
}

// MaxInstanceSize bounds the data ParseInstance accepts (an instance is a
// few hundred bytes plus its payload; ZooKeeper's own limit is 1 MiB).
const MaxInstanceSize = 256 << 10

// ParseInstance decodes an instance znode's JSON. It refuses, with an
// error naming the field, data that is not a JSON object, an address that
// is missing or not a host, a port or sslPort that is not a TCP port, an
// instance with neither, and fields of the wrong JSON type. payload,
// uriSpec, registrationTimeUTC and unknown fields are not read.
func ParseInstance(data []byte) (Instance, error) {
	var in Instance
	if len(data) > MaxInstanceSize {
		return in, fmt.Errorf("instance data is %d bytes, more than %d", len(data), MaxInstanceSize)
	}
	if !utf8.Valid(data) {
		return in, errors.New("instance data is not UTF-8 text")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return in, errors.New("instance data is not a JSON object")
	}
	var j jsonInstance
	if err := json.Unmarshal(trimmed, &j); err != nil {
		return in, fmt.Errorf("instance data is not valid JSON: %v", err)
	}
	var err error
	if in.Name, err = optString("name", j.Name); err != nil {
		return Instance{}, err
	}
	if in.ID, err = optString("id", j.ID); err != nil {
		return Instance{}, err
	}
	if in.ServiceType, err = optString("serviceType", j.ServiceType); err != nil {
		return Instance{}, err
	}
	if in.Address, err = optString("address", j.Address); err != nil {
		return Instance{}, err
	}
	in.Address = strings.TrimSpace(in.Address)
	if in.Address == "" {
		return Instance{}, errors.New("address: required")
	}
	if strings.ContainsAny(in.Address, " \t\r\n/,") {
		return Instance{}, fmt.Errorf("address: %q is not a host name or IP address", truncate(in.Address))
	}
	if in.Port, err = optPort("port", j.Port); err != nil {
		return Instance{}, err
	}
	if in.SSLPort, err = optPort("sslPort", j.SSLPort); err != nil {
		return Instance{}, err
	}
	if in.Port == 0 && in.SSLPort == 0 {
		return Instance{}, errors.New("port: required (the instance has neither port nor sslPort)")
	}
	return in, nil
}

func isNull(raw *json.RawMessage) bool { return raw == nil || string(*raw) == "null" }

// optString reads a string field that may be absent or null.
func optString(field string, raw *json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(*raw, &s); err != nil {
		return "", fmt.Errorf("%s: expected a string, got %s", field, truncate(string(*raw)))
	}
	return s, nil
}

// optPort reads a port field that may be absent or null (0).
func optPort(field string, raw *json.RawMessage) (int, error) {
	if isNull(raw) {
		return 0, nil
	}
	p, err := strconv.Atoi(string(*raw))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s: %s is not a TCP port (1-65535)", field, truncate(string(*raw)))
	}
	return p, nil
}

// truncate shortens s for an error message, on a rune boundary.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
