package load

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

func TestSpoolReadsBackWhatWasWritten(t *testing.T) {
	for _, limit := range []int{1 << 30, 100, 0} { // in memory, spilled late, spilled at once
		s := &spool{dir: t.TempDir(), limit: limit}
		var want bytes.Buffer
		rng := rand.New(rand.NewPCG(1, uint64(limit)))
		for i := 0; want.Len() < 3*fileChunk+17; i++ {
			p := make([]byte, rng.IntN(fileChunk/3))
			for j := range p {
				p[j] = byte(i + j)
			}
			if err := s.write(p); err != nil {
				t.Fatal(err)
			}
			want.Write(p)
		}
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		got, err := newSpoolReader(s).next(want.Len())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("limit %d: the spool read back %d bytes that differ from the %d written", limit, len(got), want.Len())
		}
		if (limit < want.Len()) != (s.f != nil) {
			t.Errorf("limit %d: spilled to a file %v after %d bytes", limit, s.f != nil, want.Len())
		}
		s.close()
	}
}

func TestSpoolFileErrorIsReturned(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // every write to it fails
	w := newFileWriter(f)
	defer w.stop()
	if _, err := w.Write(make([]byte, 2*fileChunk)); err != nil {
		t.Fatalf("a write is buffered, its error comes later: %v", err)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush returned no error for a file that cannot be written")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after a failed write returned no error")
	}
}
