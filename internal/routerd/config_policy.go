package routerd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
)

// Policy is a router's `client:` or `service:` block (§6.2): either one set
// of parameters for every name (`kind: io.l5d.global`, the default), or
// `kind: io.l5d.static` with `configs: [{prefix: <pattern>, ...params}]`,
// where every config whose prefix matches the name applies, later ones
// overriding earlier ones key by key. Use For to get a name's parameters.
type Policy[P any] struct {
	// Kind is io.l5d.global or io.l5d.static.
	Kind string
	// Global holds the parameters of io.l5d.global.
	Global P
	// Configs are the entries of io.l5d.static, in order.
	Configs []StaticConfig
}

// StaticConfig is one `configs:` entry of an io.l5d.static policy.
type StaticConfig struct {
	Prefix config.PathPattern
	raw    config.Raw
}

// Policy kinds.
const (
	PolicyGlobal = "io.l5d.global"
	PolicyStatic = "io.l5d.static"
)

// SetDefaults implements config.Defaulter.
func (p *Policy[P]) SetDefaults() { p.Kind = PolicyGlobal }

// tlsHolder is implemented by client parameters, whose tls.commonName may
// use the {vars} a static prefix captures.
type tlsHolder interface{ clientTLS() *ClientTLS }

// UnmarshalConfig implements config.Unmarshaler.
func (p *Policy[P]) UnmarshalConfig(r config.Raw) error {
	if r.IsZero() {
		return nil
	}
	if !r.IsMap() {
		return r.Errorf("expected a mapping")
	}
	if k, ok := r.Get("kind"); ok {
		s, _ := k.Scalar()
		if s != PolicyGlobal && s != PolicyStatic {
			return k.Errorf("unknown kind %q (known: %s, %s)", s, PolicyGlobal, PolicyStatic)
		}
		p.Kind = s
	}
	if p.Kind == PolicyGlobal {
		if err := r.Decode(&p.Global, "kind"); err != nil {
			return err
		}
		if h, ok := any(&p.Global).(tlsHolder); ok {
			if t := h.clientTLS(); t != nil {
				if vs := config.TemplateVars(t.CommonName); len(vs) > 0 {
					tr, _ := r.Get("tls")
					return &config.Error{Path: tr.Path() + ".commonName", Line: tr.Line(), Msg: fmt.Sprintf("{%s} can only be used with kind io.l5d.static, where the prefix captures it", vs[0])}
				}
			}
		}
		return nil
	}
	var errs config.Errors
	for _, k := range r.Keys() {
		if k != "kind" && k != "configs" {
			errs = append(errs, &config.Error{Path: r.Path() + "." + k, Line: r.KeyLine(k),
				Msg: fmt.Sprintf("`%s` cannot be set beside kind io.l5d.static; put it in a configs entry", k)})
		}
	}
	cr, ok := r.Get("configs")
	if !ok {
		return append(errs, r.Errorf("kind io.l5d.static needs `configs`"))
	}
	items := cr.Items()
	if items == nil && !cr.IsZero() {
		return append(errs, cr.Errorf("expected a list of {prefix: ..., ...} entries"))
	}
	p.Configs = nil
	for _, it := range items {
		pr, ok := it.Get("prefix")
		if !ok {
			errs = append(errs, it.Errorf("missing required key `prefix`"))
			continue
		}
		var sc StaticConfig
		if err := sc.Prefix.UnmarshalConfig(pr); err != nil {
			errs = append(errs, config.AsErrors(err)...)
			continue
		}
		sc.raw = it
		var probe P
		config.ApplyDefaults(&probe)
		if err := it.Decode(&probe, "prefix"); err != nil {
			errs = append(errs, config.AsErrors(err)...)
			continue
		}
		if h, ok := any(&probe).(tlsHolder); ok {
			if t := h.clientTLS(); t != nil {
				for _, v := range config.TemplateVars(t.CommonName) {
					if !slices.Contains(sc.Prefix.Vars(), v) {
						tr, _ := it.Get("tls")
						errs = append(errs, &config.Error{Path: tr.Path() + ".commonName", Line: tr.Line(),
							Msg: fmt.Sprintf("{%s} is not captured by prefix %s", v, sc.Prefix)})
					}
				}
			}
		}
		p.Configs = append(p.Configs, sc)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// For returns the parameters that apply to name (a path's elements): the
// global ones, or, for io.l5d.static, the defaults overlaid by every
// matching config in order. In client parameters, {vars} in
// tls.commonName are replaced by what the matching prefixes captured.
func (p *Policy[P]) For(name []string) P {
	if p.Kind != PolicyStatic {
		return p.Global
	}
	var out P
	config.ApplyDefaults(&out)
	vars := map[string]string{}
	for _, c := range p.Configs {
		vs, ok := c.Prefix.Match(name)
		if !ok {
			continue
		}
		for k, v := range vs {
			vars[k] = v
		}
		// Each entry was checked when loaded; layering valid entries can
		// still fail a cross-key check, in which case the keys applied so
		// far are kept.
		_ = c.raw.Decode(&out, "prefix")
	}
	if h, ok := any(&out).(tlsHolder); ok {
		if t := h.clientTLS(); t != nil {
			t.CommonName, _ = config.Expand(t.CommonName, vars)
		}
	}
	return out
}

// ---- client parameters (§6.5) ----

// ClientParams are the client keys of every protocol.
type ClientParams struct {
	LoadBalancer            LoadBalancer       `yaml:"loadBalancer"`
	FailureAccrual          FailureAccrual     `yaml:"failureAccrual"`
	TLS                     *ClientTLS         `yaml:"tls"`
	HostConnectionPool      HostConnectionPool `yaml:"hostConnectionPool"`
	RequestAttemptTimeoutMs int                `yaml:"requestAttemptTimeoutMs"`
	RequeueBudget           RetryBudget        `yaml:"requeueBudget"`
	FailFast                bool               `yaml:"failFast"`
	ClientSession           *SessionConf       `yaml:"clientSession"`
	SocketOptions           any                `yaml:"socketOptions" config:"unsupported"`
}

func (c *ClientParams) clientTLS() *ClientTLS { return c.TLS }

// Validate implements config.Validator.
func (c *ClientParams) Validate() error {
	if c.RequestAttemptTimeoutMs < 0 {
		return config.FieldError("requestAttemptTimeoutMs", "must not be negative, got %d", c.RequestAttemptTimeoutMs)
	}
	return nil
}

// HTTPClientParams are the client keys of an http router.
type HTTPClientParams struct {
	ClientParams      `yaml:",inline"`
	ForwardClientCert bool `yaml:"forwardClientCert"`
}

// H2ClientParams are the client keys of an h2 router.
type H2ClientParams struct {
	ClientParams       `yaml:",inline"`
	H2Settings         `yaml:",inline"`
	ForwardClientCert  bool `yaml:"forwardClientCert"`
	RequestAuthorizers any  `yaml:"requestAuthorizers" config:"unsupported"`
}

// Validate implements config.Validator.
func (c *H2ClientParams) Validate() error {
	if err := c.ClientParams.Validate(); err != nil {
		return err
	}
	return c.H2Settings.Validate()
}

// HostConnectionPool is `hostConnectionPool` (HTTP/1 connection pools).
// Zero MaxSize, IdleTimeMs or MaxWaiters means unbounded.
type HostConnectionPool struct {
	MinSize    int `yaml:"minSize"`
	MaxSize    int `yaml:"maxSize"`
	IdleTimeMs int `yaml:"idleTimeMs"`
	MaxWaiters int `yaml:"maxWaiters"`
}

// Validate implements config.Validator.
func (h *HostConnectionPool) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"minSize", h.MinSize}, {"maxSize", h.MaxSize}, {"idleTimeMs", h.IdleTimeMs}, {"maxWaiters", h.MaxWaiters}} {
		if f.v < 0 {
			return config.FieldError(f.name, "must not be negative, got %d", f.v)
		}
	}
	if h.MaxSize > 0 && h.MinSize > h.MaxSize {
		return config.FieldError("minSize", "minSize %d is larger than maxSize %d", h.MinSize, h.MaxSize)
	}
	return nil
}

// ClientTLS is a client's `tls` block (§6.3).
type ClientTLS struct {
	Enabled           bool        `yaml:"enabled"`
	CommonName        string      `yaml:"commonName"`
	TrustCertsBundle  string      `yaml:"trustCertsBundle"`
	TrustCerts        []string    `yaml:"trustCerts"`
	DisableValidation bool        `yaml:"disableValidation"`
	ClientAuth        *ClientAuth `yaml:"clientAuth"`
	Protocols         []string    `yaml:"protocols"`
}

// SetDefaults implements config.Defaulter.
func (t *ClientTLS) SetDefaults() { t.Enabled = true }

// Validate implements config.Validator.
func (t *ClientTLS) Validate() error {
	if !t.Enabled {
		return nil
	}
	if t.CommonName == "" && !t.DisableValidation {
		return config.FieldError("commonName", "client TLS needs `commonName` (the name the server certificate must carry) unless disableValidation is true")
	}
	if t.DisableValidation && t.ClientAuth != nil {
		return config.FieldError("clientAuth", "clientAuth cannot be combined with disableValidation")
	}
	return validateTLSProtocols(t.Protocols)
}

// ClientAuth is the client certificate a TLS client presents.
type ClientAuth struct {
	CertPath              string `yaml:"certPath" config:"required"`
	KeyPath               string `yaml:"keyPath" config:"required"`
	IntermediateCertsPath string `yaml:"intermediateCertsPath"`
}

// ---- kinds with per-kind keys ----

// kindKeys lists, per kind, the keys a block of that kind accepts besides
// `kind`; required keys are marked with a trailing '!'.
type kindKeys map[string][]string

func (kk kindKeys) names() []string {
	out := make([]string, 0, len(kk))
	for k := range kk {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// decodeKind decodes a `kind`-selected plain struct: it checks the kind,
// refuses keys that belong to other kinds, enforces required keys, then
// decodes onto dst (a pointer to a method-less shadow of the struct).
func decodeKind(r config.Raw, what string, kind *string, kk kindKeys, dst any) error {
	if r.IsZero() {
		return nil
	}
	if !r.IsMap() {
		return r.Errorf("expected a mapping with a `kind` key")
	}
	if k, ok := r.Get("kind"); ok {
		s, _ := k.Scalar()
		if _, known := kk[s]; !known {
			return k.Errorf("unknown %s kind %q (known: %s)", what, s, strings.Join(kk.names(), ", "))
		}
		*kind = s
	}
	allowed := kk[*kind]
	var errs config.Errors
	for _, key := range r.Keys() {
		if key == "kind" || slices.Contains(allowed, key) || slices.Contains(allowed, key+"!") {
			continue
		}
		for _, other := range kk {
			if slices.Contains(other, key) || slices.Contains(other, key+"!") {
				errs = append(errs, &config.Error{Path: r.Path() + "." + key, Line: r.KeyLine(key),
					Msg: fmt.Sprintf("`%s` does not apply to %s kind %s", key, what, *kind)})
				break
			}
		}
	}
	for _, a := range allowed {
		if name, ok := strings.CutSuffix(a, "!"); ok {
			if _, present := r.Get(name); !present {
				errs = append(errs, r.Errorf("%s kind %s needs `%s`", what, *kind, name))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return r.Decode(dst, "kind")
}

// LoadBalancer is `client.loadBalancer`.
type LoadBalancer struct {
	Kind            string  `yaml:"kind"`
	MaxEffort       int     `yaml:"maxEffort"`
	DecayTimeMs     int     `yaml:"decayTimeMs"`
	SmoothWindowMs  int     `yaml:"smoothWindowMs"`
	LowLoad         float64 `yaml:"lowLoad"`
	HighLoad        float64 `yaml:"highLoad"`
	MinAperture     int     `yaml:"minAperture"`
	EnableProbation bool    `yaml:"enableProbation"`
}

var lbKinds = kindKeys{
	"p2c":        {"maxEffort", "enableProbation"},
	"ewma":       {"maxEffort", "decayTimeMs", "enableProbation"},
	"aperture":   {"maxEffort", "smoothWindowMs", "lowLoad", "highLoad", "minAperture", "enableProbation"},
	"heap":       {"enableProbation"},
	"roundRobin": {"maxEffort", "enableProbation"},
}

// SetDefaults implements config.Defaulter.
func (l *LoadBalancer) SetDefaults() {
	*l = LoadBalancer{Kind: "p2c", MaxEffort: 5, DecayTimeMs: 10000, SmoothWindowMs: 5000, LowLoad: 0.5, HighLoad: 2, MinAperture: 1}
}

type lbShadow LoadBalancer

// UnmarshalConfig implements config.Unmarshaler.
func (l *LoadBalancer) UnmarshalConfig(r config.Raw) error {
	if err := decodeKind(r, "load balancer", &l.Kind, lbKinds, (*lbShadow)(l)); err != nil {
		return err
	}
	switch {
	case l.MaxEffort <= 0:
		return r.Errorf("maxEffort must be positive, got %d", l.MaxEffort)
	case l.DecayTimeMs <= 0:
		return r.Errorf("decayTimeMs must be positive, got %d", l.DecayTimeMs)
	case l.SmoothWindowMs <= 0:
		return r.Errorf("smoothWindowMs must be positive, got %d", l.SmoothWindowMs)
	case l.LowLoad <= 0 || l.HighLoad < l.LowLoad:
		return r.Errorf("need 0 < lowLoad <= highLoad, got lowLoad %g, highLoad %g", l.LowLoad, l.HighLoad)
	case l.MinAperture <= 0:
		return r.Errorf("minAperture must be positive, got %d", l.MinAperture)
	}
	return nil
}

// FailureAccrual is `client.failureAccrual`. Kind "none" disables it.
type FailureAccrual struct {
	Kind        string  `yaml:"kind"`
	Failures    int     `yaml:"failures"`
	SuccessRate float64 `yaml:"successRate"`
	Requests    int     `yaml:"requests"`
	Window      int     `yaml:"window"`
	Backoff     Backoff `yaml:"backoff"`
}

var accrualKinds = kindKeys{
	"io.l5d.consecutiveFailures": {"failures!", "backoff"},
	"io.l5d.successRate":         {"successRate!", "requests!", "backoff"},
	"io.l5d.successRateWindowed": {"successRate!", "window!", "backoff"},
	"none":                       {},
}

// SetDefaults implements config.Defaulter: 5 consecutive failures, then
// a jittered backoff of 5 s to 300 s.
func (f *FailureAccrual) SetDefaults() {
	*f = FailureAccrual{Kind: "io.l5d.consecutiveFailures", Failures: 5,
		Backoff: Backoff{Kind: "jittered", MinMs: 5000, MaxMs: 300000}}
}

type accrualShadow FailureAccrual

// UnmarshalConfig implements config.Unmarshaler.
func (f *FailureAccrual) UnmarshalConfig(r config.Raw) error {
	if err := decodeKind(r, "failure accrual", &f.Kind, accrualKinds, (*accrualShadow)(f)); err != nil {
		return err
	}
	switch f.Kind {
	case "io.l5d.consecutiveFailures":
		if f.Failures <= 0 {
			return r.Errorf("failures must be positive, got %d", f.Failures)
		}
	case "io.l5d.successRate", "io.l5d.successRateWindowed":
		if f.SuccessRate < 0 || f.SuccessRate > 1 {
			return r.Errorf("successRate must be between 0 and 1, got %g", f.SuccessRate)
		}
		if f.Kind == "io.l5d.successRate" && f.Requests <= 0 {
			return r.Errorf("requests must be positive, got %d", f.Requests)
		}
		if f.Kind == "io.l5d.successRateWindowed" && f.Window <= 0 {
			return r.Errorf("window must be positive, got %d", f.Window)
		}
	}
	return nil
}

// Backoff is a backoff object: constant `ms`, or jittered between `minMs`
// and `maxMs` (decorrelated jitter).
type Backoff struct {
	Kind  string `yaml:"kind"`
	Ms    int    `yaml:"ms"`
	MinMs int    `yaml:"minMs"`
	MaxMs int    `yaml:"maxMs"`
}

var backoffKinds = kindKeys{
	"constant": {"ms"},
	"jittered": {"minMs!", "maxMs!"},
}

type backoffShadow Backoff

// UnmarshalConfig implements config.Unmarshaler. A block replaces the
// default backoff entirely (a jittered default does not leak into a
// constant one).
func (b *Backoff) UnmarshalConfig(r config.Raw) error {
	if r.IsZero() {
		return nil
	}
	if _, ok := r.Get("kind"); !ok {
		return r.Errorf("missing `kind` (known: constant, jittered)")
	}
	*b = Backoff{}
	if err := decodeKind(r, "backoff", &b.Kind, backoffKinds, (*backoffShadow)(b)); err != nil {
		return err
	}
	switch {
	case b.Ms < 0:
		return r.Errorf("ms must not be negative, got %d", b.Ms)
	case b.Kind == "jittered" && (b.MinMs <= 0 || b.MaxMs < b.MinMs):
		return r.Errorf("jittered backoff needs 0 < minMs <= maxMs, got minMs %d, maxMs %d", b.MinMs, b.MaxMs)
	}
	return nil
}

// RetryBudget is `retries.budget` and `requeueBudget`: retries may add
// PercentCanRetry of the requests of the last TTLSecs, plus
// MinRetriesPerSec.
type RetryBudget struct {
	MinRetriesPerSec int     `yaml:"minRetriesPerSec"`
	PercentCanRetry  float64 `yaml:"percentCanRetry"`
	TTLSecs          int     `yaml:"ttlSecs"`
}

// SetDefaults implements config.Defaulter.
func (b *RetryBudget) SetDefaults() { b.MinRetriesPerSec, b.PercentCanRetry, b.TTLSecs = 10, 0.2, 10 }

// Validate implements config.Validator.
func (b *RetryBudget) Validate() error {
	if b.MinRetriesPerSec < 0 {
		return config.FieldError("minRetriesPerSec", "must not be negative, got %d", b.MinRetriesPerSec)
	}
	if b.PercentCanRetry < 0 || b.PercentCanRetry > 1000 {
		return config.FieldError("percentCanRetry", "must be between 0 and 1000, got %g", b.PercentCanRetry)
	}
	if b.TTLSecs < 1 || b.TTLSecs > 60 {
		return config.FieldError("ttlSecs", "must be between 1 and 60, got %d", b.TTLSecs)
	}
	return nil
}

// ---- service parameters (§6.6) ----

// ServiceParams are the service keys of every protocol.
type ServiceParams struct {
	TotalTimeoutMs int     `yaml:"totalTimeoutMs"`
	Retries        Retries `yaml:"retries"`
}

// Validate implements config.Validator.
func (s *ServiceParams) Validate() error {
	if s.TotalTimeoutMs < 0 {
		return config.FieldError("totalTimeoutMs", "must not be negative, got %d", s.TotalTimeoutMs)
	}
	return nil
}

// Retries is `service.retries`.
type Retries struct {
	Budget  RetryBudget `yaml:"budget"`
	Backoff Backoff     `yaml:"backoff"`
}

// SetDefaults implements config.Defaulter: no backoff between retries.
func (r *Retries) SetDefaults() { r.Backoff = Backoff{Kind: "constant"} }

// HTTPServiceParams are the service keys of an http router.
type HTTPServiceParams struct {
	ServiceParams      `yaml:",inline"`
	ResponseClassifier HTTPClassifier `yaml:"responseClassifier"`
}

// H2ServiceParams are the service keys of an h2 router.
type H2ServiceParams struct {
	ServiceParams           `yaml:",inline"`
	ResponseClassifier      H2Classifier    `yaml:"responseClassifier"`
	ClassificationTimeoutMs int             `yaml:"classificationTimeoutMs"`
	RetryBufferSize         RetryBufferSize `yaml:"retryBufferSize"`
}

// SetDefaults implements config.Defaulter.
func (s *H2ServiceParams) SetDefaults() { s.ClassificationTimeoutMs = 100 }

// Validate implements config.Validator.
func (s *H2ServiceParams) Validate() error {
	if err := s.ServiceParams.Validate(); err != nil {
		return err
	}
	if s.ClassificationTimeoutMs < 0 {
		return config.FieldError("classificationTimeoutMs", "must not be negative, got %d", s.ClassificationTimeoutMs)
	}
	return nil
}

// RetryBufferSize bounds how much of a request and response an h2 router
// buffers to be able to retry.
type RetryBufferSize struct {
	RequestBytes  int `yaml:"requestBytes"`
	ResponseBytes int `yaml:"responseBytes"`
}

// SetDefaults implements config.Defaulter.
func (b *RetryBufferSize) SetDefaults() { b.RequestBytes, b.ResponseBytes = 16383, 16383 }

// Validate implements config.Validator.
func (b *RetryBufferSize) Validate() error {
	if b.RequestBytes < 0 || b.ResponseBytes < 0 {
		return config.FieldError("", "buffer sizes must not be negative")
	}
	return nil
}

// Classifier is a `responseClassifier`: Kind plus the status-code lists of
// the gRPC kinds.
type Classifier struct {
	Kind                 string `yaml:"kind"`
	RetryableStatusCodes []int  `yaml:"retryableStatusCodes"`
	SuccessStatusCodes   []int  `yaml:"successStatusCodes"`
}

type classifierShadow Classifier

// HTTP classifier kinds.
var httpClassifiers = kindKeys{
	"io.l5d.http.nonRetryable5XX":        {},
	"io.l5d.http.retryableRead5XX":       {},
	"io.l5d.http.retryableIdempotent5XX": {},
	"io.l5d.http.retryableAll5XX":        {},
	"io.l5d.http.allSuccessful":          {},
}

// h2 classifier kinds: twins of the HTTP ones plus the gRPC kinds.
var h2Classifiers = kindKeys{
	"io.l5d.h2.nonRetryable5XX":           {},
	"io.l5d.h2.retryableRead5XX":          {},
	"io.l5d.h2.retryableIdempotent5XX":    {},
	"io.l5d.h2.retryableAll5XX":           {},
	"io.l5d.h2.allSuccessful":             {},
	"io.l5d.h2.grpc.default":              {"successStatusCodes"},
	"io.l5d.h2.grpc.compliant":            {"successStatusCodes"},
	"io.l5d.h2.grpc.alwaysRetryable":      {"successStatusCodes"},
	"io.l5d.h2.grpc.neverRetryable":       {"successStatusCodes"},
	"io.l5d.h2.grpc.retryableStatusCodes": {"retryableStatusCodes!", "successStatusCodes"},
}

// HTTPClassifier is the responseClassifier of an http router.
type HTTPClassifier struct{ Classifier }

// SetDefaults implements config.Defaulter.
func (c *HTTPClassifier) SetDefaults() { c.Kind = "io.l5d.http.nonRetryable5XX" }

// UnmarshalConfig implements config.Unmarshaler.
func (c *HTTPClassifier) UnmarshalConfig(r config.Raw) error {
	return decodeKind(r, "http response classifier", &c.Kind, httpClassifiers, (*classifierShadow)(&c.Classifier))
}

// H2Classifier is the responseClassifier of an h2 router.
type H2Classifier struct{ Classifier }

// SetDefaults implements config.Defaulter.
func (c *H2Classifier) SetDefaults() { c.Kind = "io.l5d.h2.nonRetryable5XX" }

// UnmarshalConfig implements config.Unmarshaler.
func (c *H2Classifier) UnmarshalConfig(r config.Raw) error {
	if err := decodeKind(r, "h2 response classifier", &c.Kind, h2Classifiers, (*classifierShadow)(&c.Classifier)); err != nil {
		return err
	}
	for _, codes := range [][]int{c.RetryableStatusCodes, c.SuccessStatusCodes} {
		for _, code := range codes {
			if code < 0 || code > 16 {
				return r.Errorf("gRPC status code %d out of range 0-16", code)
			}
		}
	}
	if strings.HasPrefix(c.Kind, "io.l5d.h2.grpc.") && c.SuccessStatusCodes == nil {
		c.SuccessStatusCodes = []int{0}
	}
	return nil
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func joinList(list []string) string { return strings.Join(list, ", ") }
