package ims

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"strconv"
	"testing"
)

// benchShape is the size of the benchmark file: scale "ucl" (290,000 module
// registrations in 15,000 courses, plus about 2 staff per course) with
// MIM_BENCH_FULL=1, a twentieth of it otherwise, to keep the shared machine
// free.
func benchShape() (courses, perCourse int) {
	if os.Getenv("MIM_BENCH_FULL") != "" {
		return 15000, 21
	}
	return 750, 21
}

func benchMember(c, i int) Member {
	m := Member{IDNumber: strconv.Itoa(21000000 + c*37 + i), RoleType: "01", Active: i%25 != 0,
		Begin: Date{2025, 9, 22}, LastDay: Date{2026, 6, 12}}
	if i%3 == 0 {
		m.Cohort = "Seminar group " + strconv.Itoa(i%4)
	}
	if i < 2 {
		m.IDNumber, m.RoleType, m.Begin, m.LastDay = "S00"+strconv.Itoa(4000+c%900+i), "02", Date{}, Date{}
	}
	return m
}

type benchCourse struct {
	id      string
	members []Member
}

// benchData builds the rows once, so the benchmark times the writer, not
// the generator (the export streams rows from PostgreSQL the same way).
func benchData() []benchCourse {
	courses, per := benchShape()
	out := make([]benchCourse, courses)
	for c := range out {
		out[c].id = "MODC" + strconv.Itoa(1000+c) + "-2025-T1"
		for i := 0; i < per; i++ {
			out[c].members = append(out[c].members, benchMember(c, i))
		}
	}
	return out
}

func writeBench(w io.Writer, data []benchCourse) (Stats, error) {
	iw := NewWriter(w)
	if err := iw.WriteProperties(Properties{Target: "moodle-main", DataSource: "MIM bench"}); err != nil {
		return Stats{}, err
	}
	for _, c := range data {
		if err := iw.BeginMembership(c.id); err != nil {
			return Stats{}, err
		}
		for _, m := range c.members {
			if err := iw.WriteMember(m); err != nil {
				return Stats{}, err
			}
		}
		if err := iw.EndMembership(); err != nil {
			return Stats{}, err
		}
	}
	err := iw.Close()
	return iw.Stats(), err
}

// BenchmarkWriter measures the hand-written writer into io.Discard (MB/s of
// IMS output; the target is 300 MB/s or more on the 2-core machine).
func BenchmarkWriter(b *testing.B) {
	data := benchData()
	st, err := writeBench(io.Discard, data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := writeBench(io.Discard, data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Members), "members/op")
}

// The same document through encoding/xml's Encoder, for the ratio the
// writer is measured against. It produces equivalent elements (not byte-identical layout).
type xmlMember struct {
	XMLName xml.Name `xml:"member"`
	Source  string   `xml:"sourcedid>source"`
	ID      string   `xml:"sourcedid>id"`
	IDType  string   `xml:"idtype"`
	Role    struct {
		RoleType  string        `xml:"roletype,attr"`
		Recstatus string        `xml:"recstatus,attr,omitempty"`
		Status    string        `xml:"status"`
		Timeframe *xmlTimeframe `xml:"timeframe"`
		Cohort    string        `xml:"extension>cohort,omitempty"`
	} `xml:"role"`
}

type xmlTimeframe struct {
	Begin xmlDate `xml:"begin"`
	End   xmlDate `xml:"end"`
}

type xmlDate struct {
	Restrict string `xml:"restrict,attr"`
	V        string `xml:",chardata"`
}

func BenchmarkEncodingXMLForComparison(b *testing.B) {
	courses, per := benchShape()
	run := func(w io.Writer) int64 {
		cw := &countWriter{w: w}
		enc := xml.NewEncoder(cw)
		enc.Indent("", "  ")
		start := xml.StartElement{Name: xml.Name{Local: "membership"}}
		for c := 0; c < courses; c++ {
			_ = enc.EncodeToken(start)
			_ = enc.EncodeElement(struct {
				Source string `xml:"source"`
				ID     string `xml:"id"`
			}{"MIM", "MODC" + strconv.Itoa(1000+c) + "-2025-T1"}, xml.StartElement{Name: xml.Name{Local: "sourcedid"}})
			for i := 0; i < per; i++ {
				m := benchMember(c, i)
				var x xmlMember
				x.Source, x.ID, x.IDType = "MIM", m.IDNumber, "1"
				x.Role.RoleType, x.Role.Status, x.Role.Cohort = m.RoleType, "1", m.Cohort
				if !m.Active {
					x.Role.Recstatus, x.Role.Status, x.Role.Cohort = "3", "0", ""
				}
				if !m.Begin.IsZero() {
					x.Role.Timeframe = &xmlTimeframe{}
					x.Role.Timeframe.Begin.Restrict, x.Role.Timeframe.Begin.V = "1", m.Begin.String()
					x.Role.Timeframe.End.Restrict, x.Role.Timeframe.End.V = "1", m.LastDay.AddDays(1).String()
				}
				if err := enc.Encode(x); err != nil {
					b.Fatal(err)
				}
			}
			_ = enc.EncodeToken(start.End())
		}
		_ = enc.Flush()
		return cw.n
	}
	b.SetBytes(run(io.Discard))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(io.Discard)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func benchFile(b *testing.B) []byte {
	var buf bytes.Buffer
	if _, err := writeBench(&buf, benchData()); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkValidate measures the pre-publication check (encoding/xml plus
// the line rules, in parallel).
func BenchmarkValidate(b *testing.B) {
	f := benchFile(b)
	b.SetBytes(int64(len(f)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ValidateBytes(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanner measures the Moodle-like reader the simulator applies
// files with.
func BenchmarkScanner(b *testing.B) {
	f := benchFile(b)
	b.SetBytes(int64(len(f)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sc := NewScanner(bytes.NewReader(f))
		n := 0
		for sc.Scan() {
			if m, ok := sc.Element().(*MembershipElement); ok {
				n += len(m.Members)
			}
		}
		if sc.Err() != nil || n == 0 {
			b.Fatal(sc.Err(), n)
		}
	}
}
