package http1

import "bufio"

// writeUint writes n in base 10 or 16 (lower case) byte by byte: a
// scratch array handed to bufio.Writer.Write would escape to the heap,
// one allocation per status line or chunk.
func writeUint(bw *bufio.Writer, n uint64, base uint64) {
	const digits = "0123456789abcdef"
	d := uint64(1)
	for n/d >= base {
		d *= base
	}
	for ; d > 0; d /= base {
		bw.WriteByte(digits[n/d%base])
	}
}
