package load

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// spool is an append-only byte store: it stays in memory up to limit bytes,
// then moves to a temporary file, so a writer's memory stays flat however
// many records an entity has. The file is unlinked as soon as it is created
// where the system allows it, so a crash leaves nothing behind. Once in a
// file, it is written by a goroutine of its own (fileWriter), so the
// extraction writing records does not wait for the kernel's copies.
type spool struct {
	dir   string
	limit int
	mem   []byte
	f     *os.File
	w     *fileWriter
	size  int64
	// keepName is the file's name when it could not be unlinked while open.
	keepName string
}

func (s *spool) write(p []byte) error {
	s.size += int64(len(p))
	if s.f == nil {
		if len(s.mem)+len(p) <= s.limit {
			s.mem = append(s.mem, p...)
			return nil
		}
		if err := s.spill(); err != nil {
			return err
		}
	}
	_, err := s.w.Write(p)
	return err
}

func (s *spool) spill() error {
	f, err := os.CreateTemp(s.dir, "mim-load-*.spool")
	if err != nil {
		return fmt.Errorf("creating a spool file: %w", err)
	}
	// Unlinked while open: the space is freed when it is closed, even by a crash.
	unlinked := os.Remove(f.Name()) == nil
	if !unlinked {
		// Some systems refuse to unlink an open file; close removes it then.
		s.keepName = f.Name()
	}
	s.f = f
	s.w = newFileWriter(f)
	if _, err := s.w.Write(s.mem); err != nil {
		return fmt.Errorf("writing a spool file: %w", err)
	}
	s.mem = nil
	return nil
}

// flush makes everything written readable through readAt.
func (s *spool) flush() error {
	if s.w != nil {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("writing a spool file: %w", err)
		}
	}
	return nil
}

func (s *spool) close() {
	s.mem = nil
	if s.f != nil {
		s.w.stop()
		s.f.Close()
		if s.keepName != "" {
			os.Remove(s.keepName)
		}
		s.f, s.w = nil, nil
	}
}

// fileWriter writes a spool file in the background: Write copies into a
// chunk, and a full chunk goes to a goroutine that writes it to the file
// while the next one fills. flush waits for every chunk to be written and
// returns the first error; Write returns it too, once it has happened.
type fileWriter struct {
	f     *os.File
	cur   []byte
	jobs  chan fileJob
	free  chan []byte
	done  chan struct{}
	mu    sync.Mutex
	err   error
	ended bool
}

type fileJob struct {
	b   []byte
	ack chan struct{} // closed once b and every chunk before it are written
}

const (
	fileChunk   = 256 << 10
	fileBuffers = 3 // one filling, up to two being written or waiting
)

func newFileWriter(f *os.File) *fileWriter {
	w := &fileWriter{f: f, jobs: make(chan fileJob, fileBuffers), free: make(chan []byte, fileBuffers), done: make(chan struct{})}
	for i := 1; i < fileBuffers; i++ {
		w.free <- make([]byte, 0, fileChunk)
	}
	w.cur = make([]byte, 0, fileChunk)
	go w.loop()
	return w
}

func (w *fileWriter) loop() {
	defer close(w.done)
	for j := range w.jobs {
		if len(j.b) > 0 && w.failed() == nil {
			if _, err := w.f.Write(j.b); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		if j.ack != nil {
			close(j.ack)
		}
		w.free <- j.b[:0]
	}
}

func (w *fileWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		room := cap(w.cur) - len(w.cur)
		if room == 0 {
			w.jobs <- fileJob{b: w.cur}
			w.cur = <-w.free
			continue
		}
		k := min(room, len(p))
		w.cur = append(w.cur, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// Flush writes what is buffered and waits until all of it is in the file.
func (w *fileWriter) Flush() error {
	ack := make(chan struct{})
	w.jobs <- fileJob{b: w.cur, ack: ack}
	<-ack
	w.cur = <-w.free
	return w.failed()
}

// stop ends the goroutine; what was not flushed is dropped.
func (w *fileWriter) stop() {
	if w.ended {
		return
	}
	w.ended = true
	close(w.jobs)
	<-w.done
}

// spoolReader reads a spool from the start; skip jumps over bytes without
// reading them (a seek on a file).
type spoolReader struct {
	s        *spool
	pos      int64
	buf      []byte
	bufStart int64
}

const readChunk = 512 << 10

func newSpoolReader(s *spool) *spoolReader { return &spoolReader{s: s} }

var errShortSpool = errors.New("the spool file is shorter than what was written to it")

// next returns the n bytes at the current position; the slice is valid until
// the next call.
func (r *spoolReader) next(n int) ([]byte, error) {
	if r.pos+int64(n) > r.s.size {
		return nil, errShortSpool
	}
	if r.s.f == nil {
		b := r.s.mem[r.pos : r.pos+int64(n)]
		r.pos += int64(n)
		return b, nil
	}
	if r.pos < r.bufStart || r.pos+int64(n) > r.bufStart+int64(len(r.buf)) {
		size := max(n, readChunk)
		if rest := r.s.size - r.pos; int64(size) > rest {
			size = int(rest)
		}
		if cap(r.buf) < size {
			r.buf = make([]byte, size)
		}
		r.buf = r.buf[:size]
		if _, err := io.ReadFull(io.NewSectionReader(r.s.f, r.pos, int64(size)), r.buf); err != nil {
			return nil, fmt.Errorf("reading a spool file: %w", err)
		}
		r.bufStart = r.pos
	}
	off := r.pos - r.bufStart
	r.pos += int64(n)
	return r.buf[off : off+int64(n)], nil
}

func (r *spoolReader) skip(n int) { r.pos += int64(n) }

func (r *spoolReader) uvarint() (uint64, error) {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.next(1)
		if err != nil {
			return 0, err
		}
		x |= uint64(b[0]&0x7f) << shift
		if b[0] < 0x80 {
			return x, nil
		}
		shift += 7
	}
	return 0, errors.New("a spool file is corrupt (bad length)")
}

func (r *spoolReader) done() bool { return r.pos >= r.s.size }
