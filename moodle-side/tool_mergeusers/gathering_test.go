package toolmergeusers

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// php finds PHP's command line, which ./scripts/setup installs; without it
// the tests skip, except in CI or under MIM_REQUIRE_DB=1, where they fail.
func php(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("MIM_REQUIRE_DB") == "1" {
			t.Fatal("php is not installed (./scripts/setup installs php-cli)")
		}
		t.Skip("php is not installed (./scripts/setup installs php-cli)")
	}
	return p
}

func TestPHPLint(t *testing.T) {
	bin := php(t)
	files, err := filepath.Glob("*/*.php")
	if err != nil || len(files) < 3 {
		t.Fatalf("PHP files %v, %v", files, err)
	}
	for _, f := range files {
		if out, err := exec.Command(bin, "-l", f).CombinedOutput(); err != nil {
			t.Errorf("php -l %s: %v\n%s", f, err, out)
		}
	}
}

type result struct {
	Merged  [][2]int64 `json:"merged"`
	Error   string     `json:"error"`
	Refused [][2]any   // from the log: seq, code
	Log     string
}

var refusedLine = regexp.MustCompile(`pair (\d+) \(\d+ into \d+\): refused \[([a-z_]+)\]`)

// run runs the gathering on list with the users and the plugin log of site
// (the harness's JSON) and returns what it handed over and refused.
func run(t *testing.T, site any, list []byte) result {
	t.Helper()
	bin := php(t)
	dir := t.TempDir()
	file, logf, caseFile := filepath.Join(dir, "merge-main-7.csv"), filepath.Join(dir, "gathering.log"), filepath.Join(dir, "case.json")
	b, err := json.Marshal(site)
	if err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string][]byte{file: list, caseFile: b} {
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join("tests", "harness.php"), caseFile)
	cmd.Env = append(os.Environ(), "MIM_MERGE_FILE="+file, "MIM_MERGE_LOG="+logf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php harness: %v\n%s", err, stderr.String())
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("harness output %q: %v", out, err)
	}
	logText, _ := os.ReadFile(logf)
	r.Log = string(logText)
	if r.Error == "" && !strings.Contains(stderr.String(), "pairs handed to tool_mergeusers") {
		t.Errorf("the gathering's lines do not reach the terminal:\n%s", stderr.String())
	}
	for _, m := range refusedLine.FindAllStringSubmatch(r.Log, -1) {
		seq, _ := strconv.Atoi(m[1])
		r.Refused = append(r.Refused, [2]any{float64(seq), m[2]})
	}
	return r
}

// The gathering reads the list MIM's writer writes, evidence and all, and
// hands over every pair in order; its log says what the plugin made of each.
func TestGatheringReadsMIMsMergeList(t *testing.T) {
	pairs := []merge.Pair{
		{FromUserID: 10, ToUserID: 11, FromUsername: "uczlspw-old", ToUsername: "uczlspw", FromIDNumber: "21000001", ToIDNumber: "21000001",
			Reason: "same SITS student code", KeepReason: "kept uczlspw: the SITS username", Evidence: `SITS student 21000001 has 2 accounts: "a, b"; 10 uczlspw-old (manual)`},
		{FromUserID: 12, ToUserID: 13, FromUsername: "jdoe19@example.ac.uk", ToUsername: "jdoe19", ToIDNumber: "21000002",
			Reason: "case-variant e-mail", KeepReason: "kept jdoe19: ldap, the site's main authentication (removed: saml2)"},
	}
	var buf bytes.Buffer
	if err := merge.Write(&buf, pairs, merge.WithEvidence()); err != nil {
		t.Fatal(err)
	}
	site := map[string]any{"users": []map[string]any{
		{"id": 10, "username": "uczlspw-old"}, {"id": 11, "username": "uczlspw"}, {"id": 12, "username": "jdoe19@example.ac.uk"}, {"id": 13, "username": "jdoe19"}}}
	r := run(t, site, buf.Bytes())
	if r.Error != "" || !slices.Equal(r.Merged, [][2]int64{{10, 11}, {12, 13}}) || len(r.Refused) != 0 {
		t.Fatalf("merged %v, refused %v, error %q\n%s", r.Merged, r.Refused, r.Error, r.Log)
	}
	for _, want := range []string{"merge list ", ": 2 pairs (sha256 ", "pair 1 (10 into 11): handed to tool_mergeusers: success, log id 1",
		"pair 2 (12 into 13): handed to tool_mergeusers: success, log id 2", "2 of 2 pairs handed to tool_mergeusers, 0 refused"} {
		if !strings.Contains(r.Log, want) {
			t.Errorf("log lacks %q:\n%s", want, r.Log)
		}
	}
	// The same list again: the plugin's log shows both done, so nothing is
	// merged twice.
	site["log"] = []map[string]any{{"from": 10, "to": 11, "success": true}, {"from": 12, "to": 13, "success": true}}
	if r := run(t, site, buf.Bytes()); len(r.Merged) != 0 || len(r.Refused) != 2 || r.Refused[0][1] != "merged" {
		t.Errorf("second run: merged %v, refused %v\n%s", r.Merged, r.Refused, r.Log)
	}
}

// The refusals, on the cases the simulator's twin is tested on too.
func TestGatheringCases(t *testing.T) {
	cs, err := moodletest.ReadMergeListCases(filepath.Join("tests", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Cases {
		t.Run(c.Name, func(t *testing.T) {
			r := run(t, map[string]any{"users": cs.Users, "log": c.Log}, []byte(c.File))
			if c.Want.Error != "" {
				if !strings.Contains(r.Error, c.Want.Error) || len(r.Merged) != 0 {
					t.Errorf("error %q (merged %v), want one saying %q", r.Error, r.Merged, c.Want.Error)
				}
				return
			}
			if r.Error != "" {
				t.Fatalf("error %q\n%s", r.Error, r.Log)
			}
			var want [][2]int64
			for _, m := range c.Want.Merged {
				want = append(want, [2]int64{m[1], m[2]})
			}
			if !slices.Equal(r.Merged, want) {
				t.Errorf("merged %v, want %v\n%s", r.Merged, want, r.Log)
			}
			if !slices.EqualFunc(r.Refused, c.Want.Refused, func(a, b [2]any) bool { return a == b }) {
				t.Errorf("refused %v, want %v\n%s", r.Refused, c.Want.Refused, r.Log)
			}
		})
	}
}
