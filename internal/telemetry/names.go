package telemetry

// Metric names of Linkerd 1's tree (spec headers-admin.md §6.1). Use these
// constants rather than literals so that dashboards, the Prometheus
// exporter and the Grafana board agree with what is recorded.
const (
	// Request metrics, under a server, service, client or client×service scope.
	Requests       = "requests"           // counter
	Success        = "success"            // counter, per response classification
	Failures       = "failures"           // counter; also failures/<FailureKind>
	Pending        = "pending"            // gauge, in-flight requests
	RequestLatency = "request_latency_ms" // stat

	// Connection metrics, server and client scopes.
	Connections = "connections" // gauge
	Connects    = "connects"    // counter
	Closes      = "closes"      // counter

	// HTTP response metrics: status/<code>, status/<N>XX, status/error
	// counters and time/<N>XX, time/error stats.
	StatusPrefix = "status"
	TimePrefix   = "time"
	StatusError  = "error"

	// Bytes, server and client scopes (optional in the spec, cheap).
	RequestPayloadBytes  = "request_payload_bytes"  // stat
	ResponsePayloadBytes = "response_payload_bytes" // stat

	// Service scope: application retries.
	RetriesPerRequest      = "retries/per_request"      // stat
	RetriesTotal           = "retries/total"            // counter
	RetriesBudgetExhausted = "retries/budget_exhausted" // counter
	RetriesBudget          = "retries/budget"           // gauge

	// Client scope: connection-level requeues.
	RetriesRequeues           = "retries/requeues"             // counter
	RetriesRequeuesPerRequest = "retries/requeues_per_request" // stat
	RetriesRequestLimit       = "retries/request_limit"        // counter

	// Client scope: load balancer and failure accrual.
	LoadBalancerSize           = "loadbalancer/size"              // gauge
	LoadBalancerAvailable      = "loadbalancer/available"         // gauge
	FailureAccrualRemovals     = "failure_accrual/removals"       // counter
	FailureAccrualRevivals     = "failure_accrual/revivals"       // counter
	FailureAccrualRemovedForMs = "failure_accrual/removed_for_ms" // counter
	FailureAccrualProbes       = "failure_accrual/probes"         // counter

	// Router scope.
	DtabSize = "dtab/size" // stat
)

// FailureKind is the stable, Go-side replacement for the JVM exception
// class chains Linkerd records under failures/<class>. The Prometheus
// exporter turns failures/<kind> into the label exception="<kind>".
type FailureKind string

// Failure kinds. Record exactly one per failed request.
const (
	FailureConnect     FailureKind = "ConnectionFailed"     // dial or TLS handshake failed
	FailureTimeout     FailureKind = "RequestTimeout"       // totalTimeoutMs / requestAttemptTimeoutMs
	FailureNoEndpoints FailureKind = "NoEndpointsAvailable" // empty or fully removed replica set
	FailureNoRoute     FailureKind = "NoBrokersAvailable"   // name resolved negative (Linkerd's name for it)
	FailureBindTimeout FailureKind = "BindingTimeout"       // binding did not complete in time
	FailureRejected    FailureKind = "RequestRejected"      // maxConcurrentRequests, budget
	FailureCancelled   FailureKind = "Cancelled"            // caller went away
	FailureReset       FailureKind = "ConnectionReset"      // connection broke mid-request
	FailureBadResponse FailureKind = "InvalidResponse"      // malformed response from the endpoint
	FailureClassified  FailureKind = "ClassifiedFailure"    // a response the classifier calls a failure (e.g. 5XX)
	FailureUnknown     FailureKind = "UnknownError"         // anything else
)
