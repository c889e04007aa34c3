package progress

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTableAlignsTextLeftAndNumbersRight(t *testing.T) {
	tb := NewTable(Column{Name: "SOURCE"}, Column{Name: "ENTITY"}, Column{Name: "IN", Right: true})
	tb.Add("moodle:main", "enrolments", "1,234,567")
	tb.Add("sits", "student", "42")
	tb.Add("cmis") // short rows are padded
	var b bytes.Buffer
	if err := tb.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"SOURCE       ENTITY             IN\n" +
		"moodle:main  enrolments  1,234,567\n" +
		"sits         student            42\n" +
		"cmis\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	tb.SortBy(0)
	b.Reset()
	tb.Write(&b)
	if !strings.HasPrefix(strings.Split(b.String(), "\n")[1], "cmis") {
		t.Errorf("not sorted:\n%s", b.String())
	}
}

func TestTerminalRedrawsInPlace(t *testing.T) {
	var b bytes.Buffer
	d := NewTerminal(&b)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	d.now = func() time.Time { return now }
	s := d.Source("moodle:main")
	s.Expect("enrolments", 200)
	s.Done("enrolments", 50)
	d.Source("sits").Done("student", 1234)
	now = start.Add(3 * time.Second)
	d.Flush()
	first := b.String()
	for _, want := range []string{
		"\r\x1b[2Kmoodle:main  enrolments  [######------------------] 50/200  25%  3s\n",
		"\r\x1b[2Ksits         student     1,234 done  3s\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first draw lacks %q:\n%q", want, first)
		}
	}
	if strings.Contains(first, "\x1b[2A") {
		t.Error("the first draw moved the cursor up")
	}
	b.Reset()
	s.Done("enrolments", 150)
	d.Finish("sits", "student", "1,234 rows, 3 new")
	d.Flush()
	second := b.String()
	if !strings.HasPrefix(second, "\x1b[2A") || !strings.Contains(second, "[########################] 200/200 100%") ||
		!strings.Contains(second, "student     1,234 rows, 3 new\n") {
		t.Errorf("second draw:\n%q", second)
	}
}

func TestLogModeLogsOnlyWhatMoved(t *testing.T) {
	var b bytes.Buffer
	d := NewLog(slog.New(slog.NewTextHandler(&b, nil)), time.Hour)
	s := d.Source("cmis")
	s.Expect("group_member", 10)
	s.Done("group_member", 4)
	s.Done("module_group", 0)
	d.Flush()
	d.Flush() // nothing moved
	out := b.String()
	if strings.Count(out, "msg=progress") != 1 || !strings.Contains(out, "source=cmis entity=group_member done=4 expected=10") {
		t.Errorf("log:\n%s", out)
	}
}

func TestConcurrentUpdatesAndStartStop(t *testing.T) {
	var mu sync.Mutex
	var b bytes.Buffer
	d := NewTerminal(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return b.Write(p) }))
	d.every = time.Millisecond
	d.Start()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := d.Source("moodle:main")
			for j := 0; j < 100; j++ {
				tr.Done("enrolments", 1)
			}
		}()
	}
	wg.Wait()
	d.Stop()
	d.Stop()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(b.String(), "800 done") {
		t.Errorf("final draw lacks the total:\n%q", b.String())
	}
	var nilDisplay *Display
	nilDisplay.Source("x").Done("y", 1) // a nil display does nothing
	nilDisplay.Finish("x", "y", "z")
	nilDisplay.Start()
	nilDisplay.Stop()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("/dev/null is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a file is not a terminal")
	}
}
