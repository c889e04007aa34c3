package deliver

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchSize is about the size of a full IMS file at scale "ucl" (90 MB) with
// MIM_BENCH_FULL=1, a sixth of it otherwise.
func benchSize() int {
	if os.Getenv("MIM_BENCH_FULL") != "" {
		return 90 << 20
	}
	return 15 << 20
}

func benchContent() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < benchSize(); i++ {
		b.WriteString("  <member>\n    <sourcedid><source>MIM</source><id>" + strconv.Itoa(21000000+i) + "</id></sourcedid>\n  </member>\n")
	}
	return b.Bytes()
}

// BenchmarkPublish measures WriteFile (write, SHA-256, fsync, rename, dir
// fsync) followed by the archive copy (read, hash-checked copy, fsync,
// manifest), in MB/s of the published file. Each iteration writes a new
// name, so the one-second mtime rule never waits.
func BenchmarkPublish(b *testing.B) {
	content := benchContent()
	dir := b.TempDir()
	a := Archive{Root: filepath.Join(dir, "archive")}
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := WriteFile(context.Background(), filepath.Join(dir, "ims-main-"+strconv.Itoa(i)+".xml"), func(w io.Writer) error {
			_, err := w.Write(content)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Store(context.Background(), int64(i+1), "main", "ims", f); err != nil {
			b.Fatal(err)
		}
	}
}
