package statsd

import (
	"log/slog"
	"net"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// MaxPacket is the largest datagram the client builds from several lines:
// it fits an Ethernet MTU (1500) minus IPv4/IPv6 and UDP headers, so a
// packet is never fragmented on the usual networks. A single line longer
// than this is sent alone (lines are never split).
const MaxPacket = 1432

// maxDatagram is the largest UDP payload over IPv4; a longer line cannot
// be sent at all and is counted as an error.
const maxDatagram = 65507

// writeTimeout bounds one send: a full socket buffer must not stall the
// exporter forever (it never stalls requests, which do not send).
const writeTimeout = time.Second

// quietPeriod is how long sends must have succeeded (or not been tried)
// before a new failure is logged again: one log line per outage, not one
// per packet.
const quietPeriod = time.Minute

// client batches lines into datagrams on a connected UDP socket. It is
// used by one goroutine at a time (the exporter), so it has no lock.
type client struct {
	conn *net.UDPConn
	log  *slog.Logger
	buf  []byte

	packets *telemetry.Counter // datagrams sent
	errors  *telemetry.Counter // datagrams that failed

	lastErr time.Time // zero until the first failure
	now     func() time.Time
}

func newClient(addr *net.UDPAddr, scope telemetry.Scope, log *slog.Logger) (*client, error) {
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, err
	}
	return &client{
		conn:    conn,
		log:     log,
		buf:     make([]byte, 0, MaxPacket),
		packets: scope.Counter("sent_packets"),
		errors:  scope.Counter("send_errors"),
		now:     time.Now,
	}, nil
}

// add appends one line, sending the pending datagram first if the line
// would not fit in it. A line may hold several newline-separated statsd
// lines that must travel together (a negative gauge).
func (c *client) add(line []byte) {
	if len(c.buf) > 0 && len(c.buf)+1+len(line) > MaxPacket {
		c.flush()
	}
	if len(c.buf) > 0 {
		c.buf = append(c.buf, '\n')
	}
	c.buf = append(c.buf, line...)
	if len(c.buf) >= MaxPacket {
		c.flush()
	}
}

// flush sends the pending datagram, if any.
func (c *client) flush() {
	if len(c.buf) == 0 {
		return
	}
	err := errTooLong
	if len(c.buf) <= maxDatagram {
		_ = c.conn.SetWriteDeadline(c.now().Add(writeTimeout))
		_, err = c.conn.Write(c.buf)
	}
	if len(c.buf) > MaxPacket {
		c.buf = make([]byte, 0, MaxPacket) // do not keep a huge buffer
	} else {
		c.buf = c.buf[:0]
	}
	if err == nil {
		c.packets.Inc()
		return
	}
	c.errors.Inc()
	// A server that is down answers with ICMP port unreachable, which a
	// connected socket reports on the next write: errors then come every
	// other packet. Log the first one and stay quiet while they go on.
	now := c.now()
	if c.lastErr.IsZero() || now.Sub(c.lastErr) >= quietPeriod {
		c.log.Warn("cannot send metrics to the StatsD server; further errors are counted in statsd/send_errors and not logged while they go on",
			"addr", c.conn.RemoteAddr().String(), "err", err)
	}
	c.lastErr = now
}

func (c *client) close() error { return c.conn.Close() }

type tooLong struct{}

func (tooLong) Error() string { return "line longer than the largest UDP datagram" }

var errTooLong error = tooLong{}
