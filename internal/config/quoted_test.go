package config

import (
	"errors"
	"math"
	"testing"
)

// scalars has one field of each kind the decoder converts.
type scalars struct {
	I   int     `yaml:"i"`
	I8  int8    `yaml:"i8"`
	I64 int64   `yaml:"i64"`
	U   uint    `yaml:"u"`
	U16 uint16  `yaml:"u16"`
	F   float64 `yaml:"f"`
	F32 float32 `yaml:"f32"`
	B   bool    `yaml:"b"`
	PB  *bool   `yaml:"pb"`
	PI  *int    `yaml:"pi"`
	S   string  `yaml:"s"`
}

// Quoted numbers and booleans load as Linkerd's Jackson-based parser loaded
// them, in YAML and JSON, in every kind of field.
func TestQuotedScalarsAccepted(t *testing.T) {
	tests := []struct {
		text string
		want scalars
	}{
		{`i: "10"`, scalars{I: 10}},
		{`i: '-10'`, scalars{I: -10}},
		{`i: "+5"`, scalars{I: 5}},
		{`i: " 42 "`, scalars{I: 42}},
		{"i: \"\\t42\\n\"", scalars{I: 42}},
		{`i: "010"`, scalars{I: 10}}, // decimal, as Jackson reads it
		{`i: "-0"`, scalars{}},
		{`i8: "-128"`, scalars{I8: -128}},
		{`i64: "9223372036854775807"`, scalars{I64: math.MaxInt64}},
		{`u: "+7"`, scalars{U: 7}},
		{`u: "-0"`, scalars{}},
		{`u16: "65535"`, scalars{U16: 65535}},
		{`f: "0.5"`, scalars{F: 0.5}},
		{`f: ".5"`, scalars{F: 0.5}},
		{`f: "5."`, scalars{F: 5}},
		{`f: "+1e-3"`, scalars{F: 0.001}},
		{`f: "-2E2"`, scalars{F: -200}},
		{`f: " 3 "`, scalars{F: 3}},
		{`f32: "0.25"`, scalars{F32: 0.25}},
		{`b: "true"`, scalars{B: true}},
		{`b: 'True'`, scalars{B: true}},
		{`b: " true "`, scalars{B: true}},
		{`pi: "3"`, scalars{PI: new(3)}},
		{`pb: "false"`, scalars{PB: new(false)}},
		{`pb: "False"`, scalars{PB: new(false)}},
		// Unquoted forms are unchanged.
		{`i: 0x10`, scalars{I: 16}},
		{`i: 1_000`, scalars{I: 1000}},
		{`f: 2`, scalars{F: 2}},
		{`b: TRUE`, scalars{B: true}},
		// A string field takes any scalar as its text, as Jackson's
		// StringDeserializer did.
		{`s: 123`, scalars{S: "123"}},
		{`s: 0x10`, scalars{S: "0x10"}},
		{`s: 1.50`, scalars{S: "1.50"}},
		{`s: true`, scalars{S: "true"}},
		{`s: "123"`, scalars{S: "123"}},
		// JSON strings are coerced alike.
		{`{"i": "10", "f": "0.5", "b": "true", "u16": " 80"}`, scalars{I: 10, F: 0.5, B: true, U16: 80}},
	}
	for _, tt := range tests {
		var got scalars
		if err := Load([]byte(tt.text), &got); err != nil {
			t.Errorf("%s: %v", tt.text, err)
			continue
		}
		if !equalScalars(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func equalScalars(a, b scalars) bool {
	if (a.PB == nil) != (b.PB == nil) || a.PB != nil && *a.PB != *b.PB {
		return false
	}
	if (a.PI == nil) != (b.PI == nil) || a.PI != nil && *a.PI != *b.PI {
		return false
	}
	a.PB, b.PB, a.PI, b.PI = nil, nil, nil, nil
	return a == b
}

// Quoted text that is not a value of the field's type is refused, naming
// the field, the line and the text; so is text Jackson refused, and text
// it read as "absent" ("" and "null").
func TestQuotedScalarsRefused(t *testing.T) {
	tests := []struct{ text, want string }{
		{"\ni: \"abc\"", `i: expected an integer, got a string ("abc") (line 2)`},
		{`i: ""`, `i: expected an integer, got a string ("") (line 1)`},
		{`i: "null"`, `i: expected an integer, got a string ("null") (line 1)`},
		{`i: "1.0"`, `i: expected an integer, got a string ("1.0") (line 1)`},
		{`i: "0x10"`, `i: expected an integer, got a string ("0x10") (line 1)`},
		{`i: "1_000"`, `i: expected an integer, got a string ("1_000") (line 1)`},
		{`i: "1 000"`, `i: expected an integer, got a string ("1 000") (line 1)`},
		{`i: "+-1"`, `i: expected an integer, got a string ("+-1") (line 1)`},
		{`i: "-"`, `i: expected an integer, got a string ("-") (line 1)`},
		{`i: "１２"`, `i: expected an integer, got a string ("１２") (line 1)`}, // fullwidth digits
		{`i8: "128"`, `i8: integer 128 out of range (line 1)`},
		{`i64: "9223372036854775808"`, `i64: integer 9223372036854775808 out of range (line 1)`},
		{`u: "-1"`, `u: -1 is not a non-negative integer in range (line 1)`},
		{`u16: "65536"`, `u16: 65536 is not a non-negative integer in range (line 1)`},
		{`f: "abc"`, `f: expected a number, got a string ("abc") (line 1)`},
		{`f: "NaN"`, `f: expected a number, got a string ("NaN") (line 1)`},
		{`f: "Infinity"`, `f: expected a number, got a string ("Infinity") (line 1)`},
		{`f: "inf"`, `f: expected a number, got a string ("inf") (line 1)`},
		{`f: "0x1p3"`, `f: expected a number, got a string ("0x1p3") (line 1)`},
		{`f: "1.5d"`, `f: expected a number, got a string ("1.5d") (line 1)`},
		{`f: "1e"`, `f: expected a number, got a string ("1e") (line 1)`},
		{`f: "."`, `f: expected a number, got a string (".") (line 1)`},
		{`f: "e5"`, `f: expected a number, got a string ("e5") (line 1)`},
		{`f: "1e400"`, `f: 1e400 is not a finite number (line 1)`},
		{`f32: "1e39"`, `f32: 1e39 is not a finite number (line 1)`},
		{`b: "yes"`, `b: expected a boolean (true or false), got a string ("yes") (line 1)`},
		{`b: "TRUE"`, `b: expected a boolean (true or false), got a string ("TRUE") (line 1)`},
		{`b: "1"`, `b: expected a boolean (true or false), got a string ("1") (line 1)`},
		{`b: ""`, `b: expected a boolean (true or false), got a string ("") (line 1)`},
		{`pb: "on"`, `pb: expected a boolean (true or false), got a string ("on") (line 1)`},
		// Unquoted values of the wrong type stay refused.
		{`b: 1`, `b: expected a boolean (true or false), got an integer ("1") (line 1)`},
		{`i: 1.5`, `i: expected an integer, got a number ("1.5") (line 1)`},
		{`i: true`, `i: expected an integer, got a boolean ("true") (line 1)`},
		{"{\n\"i\": \"x1\"}", `i: expected an integer, got a string ("x1") (line 2)`},
	}
	for _, tt := range tests {
		var got scalars
		err := Load([]byte(tt.text), &got)
		if err == nil {
			t.Errorf("%s: accepted (%+v), want %s", tt.text, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%s:\n got  %s\n want %s", tt.text, err, tt.want)
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: error %T is not a *config.Error", tt.text, err)
		}
	}
}

// Quoted values reach nested, kinded, list and pointer fields, and their
// Validate hooks see the converted value.
func TestQuotedScalarsNested(t *testing.T) {
	r, err := load(t, `
admin: {port: '9991', secure: "true"}
plugins:
- kind: test.dns
  refreshIntervalSeconds: "7"
  experimental: 'True'
servers:
- port: "4140"
- port: " 4141 "
ratio: "0.5"
small: "255"
ptr: {port: '1'}
`)
	if err != nil {
		t.Fatal(err)
	}
	dns := r.Plugins[0].Value.(*dnsPlugin)
	if r.Admin.Port != 9991 || r.Admin.Secure == nil || !*r.Admin.Secure || dns.Refresh != 7 || !dns.Experimental ||
		r.Servers[0].Port != 4140 || r.Servers[1].Port != 4141 || r.Ratio != 0.5 || r.Small != 255 || r.Ptr.Port != 1 {
		t.Errorf("got %+v (plugin %+v)", r, dns)
	}
	_, err = load(t, "plugins:\n- kind: test.dns\n  refreshIntervalSeconds: '0'\n")
	if err == nil || err.Error() != `plugins[0].refreshIntervalSeconds: must be positive, got 0 (line 3)` {
		t.Errorf("validate after coercion: %v", err)
	}
	_, err = load(t, "servers:\n- port: '1'\n- port: 1\n")
	if err == nil || err.Error() != `servers[1].port: port 1 already used by servers[0] (line 3)` {
		t.Errorf("cross validate: %v", err)
	}
}

// Raw.Int, Float and Bool apply the same rule for Unmarshalers.
func TestRawScalarReaders(t *testing.T) {
	var dst struct {
		R Raw `yaml:"r"`
	}
	for _, tt := range []struct {
		text   string
		i      int64
		iOK    bool
		f      float64
		fOK    bool
		b, bOK bool
	}{
		{"r: 2181", 2181, true, 2181, true, false, false},
		{"r: '2181'", 2181, true, 2181, true, false, false},
		{"r: ' +2181 '", 2181, true, 2181, true, false, false},
		{"r: 0x10", 16, true, 16, true, false, false},
		{"r: '0x10'", 0, false, 0, false, false, false},
		{"r: 0.5", 0, false, 0.5, true, false, false},
		{"r: '0.5'", 0, false, 0.5, true, false, false},
		{"r: '99999999999999999999'", 0, false, 1e20, true, false, false},
		{"r: true", 0, false, 0, false, true, true},
		{"r: 'False'", 0, false, 0, false, false, true},
		{"r: twenty", 0, false, 0, false, false, false},
		{"r: [1]", 0, false, 0, false, false, false},
		{"r: null", 0, false, 0, false, false, false},
		{"r: .inf", 0, false, 0, false, false, false},
	} {
		if err := Load([]byte(tt.text), &dst); err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		i, iOK := dst.R.Int()
		f, fOK := dst.R.Float()
		b, bOK := dst.R.Bool()
		if i != tt.i || iOK != tt.iOK || f != tt.f || fOK != tt.fOK || b != tt.b || bOK != tt.bOK {
			t.Errorf("%s: Int() = %d, %v; Float() = %v, %v; Bool() = %v, %v", tt.text, i, iOK, f, fOK, b, bOK)
		}
	}
	var missing Raw
	if _, ok := missing.Int(); ok {
		t.Error("Int() of an absent value is ok")
	}
}
