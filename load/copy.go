package load

import (
	"context"
	"encoding/binary"
	"io"

	"github.com/jackc/pgx/v5"
)

// copyTuples is PostgreSQL's binary COPY format, written by hand: every field
// is a length and its bytes, so nothing is escaped or converted on our side
// and the server parses only what it must (the jsonb).
type copyTuples struct {
	buf []byte
}

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (c *copyTuples) begin(fields int) {
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(fields))
}

func (c *copyTuples) bytes(b []byte) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(b)))
	c.buf = append(c.buf, b...)
}

func (c *copyTuples) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
}

func (c *copyTuples) int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
}

func (c *copyTuples) boolean(v bool) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 1)
	if v {
		c.buf = append(c.buf, 1)
	} else {
		c.buf = append(c.buf, 0)
	}
}

// jsonb is version 1 of jsonb's binary input: a 1 byte, then the JSON text.
func (c *copyTuples) jsonb(b []byte) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(b)+1))
	c.buf = append(c.buf, 1)
	c.buf = append(c.buf, b...)
}

// copyReader turns a tuple generator into the io.Reader pgconn's CopyFrom
// reads. fill appends tuples to t until it has about a chunk's worth and
// reports false when there are no more.
type copyReader struct {
	t       copyTuples
	off     int
	fill    func(t *copyTuples) (more bool, err error)
	more    bool
	trailer bool
	err     error
}

const copyChunk = 256 << 10

func newCopyReader(fill func(t *copyTuples) (bool, error)) *copyReader {
	r := &copyReader{fill: fill, more: true}
	r.t.buf = append(make([]byte, 0, copyChunk+64<<10), copyHeader...)
	return r
}

func (r *copyReader) Read(p []byte) (int, error) {
	for r.off >= len(r.t.buf) {
		if r.err != nil {
			return 0, r.err
		}
		if !r.more {
			if r.trailer {
				return 0, io.EOF
			}
			r.trailer = true
			r.t.buf = binary.BigEndian.AppendUint16(r.t.buf[:0], 0xffff)
			r.off = 0
			break
		}
		r.t.buf, r.off = r.t.buf[:0], 0
		for r.more && len(r.t.buf) < copyChunk {
			r.more, r.err = r.fill(&r.t)
			if r.err != nil {
				r.more = false
				break
			}
		}
		if r.err != nil && len(r.t.buf) == 0 {
			return 0, r.err
		}
	}
	n := copy(p, r.t.buf[r.off:])
	r.off += n
	return n, nil
}

// copyFrom runs COPY sql FROM STDIN (FORMAT binary) on the transaction's
// connection with tuples from fill, and returns the rows copied.
func copyFrom(ctx context.Context, tx pgx.Tx, sql string, fill func(t *copyTuples) (bool, error)) (int64, error) {
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, newCopyReader(fill), sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
