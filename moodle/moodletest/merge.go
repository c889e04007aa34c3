package moodletest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// This file is tool_mergeusers on the site (its Moodle 4.5 branch): the
// merge itself, and the plugin's CLI run with MIM's gathering
// (moodle-side/tool_mergeusers in the repository), which reads MIM's merge
// list and refuses the pairs it must not hand over.
//
// A merge, as the plugin does it with its default settings: the removed
// account's enrolments move to the kept account, except in an enrolment
// instance (course and method) where both are enrolled, where the removed
// account's enrolment is suspended instead; its roles and group
// memberships in each course, its grades and completions move to the kept
// account (where the kept account has its own, the kept account's stay and
// the removed account's are dropped); the removed account is suspended and
// the kept one un-suspended. Usernames and idnumbers are left as they are:
// the removed account keeps its idnumber. Each merge is one row of the
// plugin's log (MergeLog).
//
// The simplification of the rest of the simulator applies: roles belong to
// the user in the course, not to an enrolment method.

// MergeLog is one row of the plugin's log table (tool_mergeusers).
type MergeLog struct {
	ID                   int64
	FromUserID, ToUserID int64
	Success              bool
	Time                 int64
	Log                  string
}

// MergeUsers merges account from into account to, as tool_mergeusers does,
// and returns the log row it wrote. An account that does not exist, or a
// merge of an account into itself, is a failed merge (logged, nothing
// changed), not an error: the plugin reports it the same way.
func (s *Site) MergeUsers(from, to int64) MergeLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mergeUsers(from, to)
}

func (s *Site) mergeUsers(from, to int64) MergeLog {
	l := MergeLog{ID: int64(len(s.merges)) + 1, FromUserID: from, ToUserID: to, Time: s.now().Unix()}
	defer func() { s.merges = append(s.merges, l) }()
	switch {
	case from == to:
		l.Log = "a user cannot be merged into itself"
		return l
	case s.users[from] == nil:
		l.Log = fmt.Sprintf("user %d does not exist", from)
		return l
	case s.users[to] == nil:
		l.Log = fmt.Sprintf("user %d does not exist", to)
		return l
	}
	var moved, suspended int
	for _, cid := range sortedKeys(s.userCourses[from]) {
		ce := s.enrol[cid]
		mf := ce.users[from]
		mt := ce.users[to]
		for _, e := range slices.Clone(mf.enrols) {
			if mt != nil && mt.enrol(e.Method) != nil {
				e.Suspended = true // both enrolled in this instance: the removed account's is disabled
				suspended++
				continue
			}
			cp := *e
			cp.UserID = to
			s.putEnrolment(cp)
			mt = ce.users[to]
			mf.enrols = slices.DeleteFunc(mf.enrols, func(x *Enrolment) bool { return x == e })
			moved++
		}
		for _, r := range mf.roles {
			s.addRole(mt, r)
		}
		mf.roles = nil
		for _, gid := range s.courseGroups[cid] {
			g := s.groups[gid]
			if _, in := g.members[from]; in {
				delete(g.members, from)
				g.members[to] = struct{}{}
			}
		}
		if len(mf.enrols) == 0 {
			delete(ce.users, from)
			ce.ids = deleteSorted(ce.ids, from)
			delete(s.userCourses[from], cid)
		}
		if c := s.completion[cid]; c != nil && c[from] != nil {
			if c[to] == nil {
				cp := *c[from]
				cp.UserID = to
				c[to] = &cp
			}
			delete(c, from)
		}
	}
	for _, byUser := range s.grades {
		if g := byUser[from]; g != nil {
			if byUser[to] == nil {
				cp := *g
				cp.UserID = to
				byUser[to] = &cp
			}
			delete(byUser, from)
		}
	}
	fu, tu := *s.users[from], *s.users[to]
	fu.Suspended, tu.Suspended = true, false
	s.putUser(&fu)
	s.putUser(&tu)
	l.Success = true
	l.Log = fmt.Sprintf("merged %s into %s: %d enrolments moved, %d suspended where both were enrolled", fu.Username, tu.Username, moved, suspended)
	return l
}

// MergeLogs returns the plugin's log, oldest first.
func (s *Site) MergeLogs() []MergeLog {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.merges)
}

// Refusal codes of MIM's gathering, one per reason it does not hand a pair
// to the plugin (the PHP gathering writes the same codes in its log).
const (
	RefuseBadIDs      = "bad_ids"      // an id is not a positive number, or both are the same
	RefuseNoUser      = "no_user"      // an account does not exist, or is deleted
	RefuseUsername    = "username"     // an account's username is no longer the one in the file
	RefuseMerged      = "merged"       // the removed account was already merged away
	RefuseTargetGone  = "target_gone"  // the kept account was itself merged away
	RefuseRefusedKept = "kept_refused" // the kept account is the removed one of a pair refused earlier in the file
)

// GatheringReport is what one run of tool_mergeusers' CLI with MIM's
// gathering did with a merge list.
type GatheringReport struct {
	// Merged are the pairs handed to the plugin, with its log row.
	Merged []GatheredMerge
	// Refused are the pairs the gathering did not hand over.
	Refused []GatheringRefusal
	// Log is the gathering's log, one line per pair.
	Log []string
}

// GatheredMerge is one pair handed to the plugin.
type GatheredMerge struct {
	Seq      int
	From, To int64
	Result   MergeLog
}

// GatheringRefusal is one pair the gathering refused.
type GatheringRefusal struct {
	Seq      int
	From, To int64
	Code     string // one of the Refuse* codes
	Reason   string
}

// mergeListColumns are the columns the gathering needs; the others
// (idnumbers, reason, keep_reason, evidence) are for people.
var mergeListColumns = []string{"seq", "from_userid", "to_userid", "from_username", "to_username"}

// RunMergeList runs tool_mergeusers' CLI with MIM's gathering on a merge
// list, as moodle-side/tool_mergeusers/lib/mimgathering.php does on a real
// site: the whole file is read first, and a file that is not a merge list
// (a column missing, a short row, seq not 1, 2, 3, ...) is refused whole
// with an error, nothing merged; then each pair in order is refused when an
// id is not a positive number or both are the same, when an account no
// longer exists, when an account's username is no longer the one the file
// names (a stale file, or a file for another site), when the removed
// account was already merged away or the kept one was (the plugin's log
// says so), or when its kept account is the removed account of a pair
// refused before; every other pair is merged.
func (s *Site) RunMergeList(r io.Reader) (*GatheringReport, error) {
	pairs, err := readMergeList(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &GatheringReport{}
	refusedFrom := map[int64]bool{}
	for _, p := range pairs {
		code, reason := s.refusal(p, refusedFrom)
		if code != "" {
			refusedFrom[p.from] = true
			rep.Refused = append(rep.Refused, GatheringRefusal{Seq: p.seq, From: p.from, To: p.to, Code: code, Reason: reason})
			rep.Log = append(rep.Log, fmt.Sprintf("pair %d (%d into %d): refused [%s] %s", p.seq, p.from, p.to, code, reason))
			continue
		}
		l := s.mergeUsers(p.from, p.to)
		rep.Merged = append(rep.Merged, GatheredMerge{Seq: p.seq, From: p.from, To: p.to, Result: l})
		outcome := "error"
		if l.Success {
			outcome = "success"
		}
		rep.Log = append(rep.Log, fmt.Sprintf("pair %d (%d into %d): handed to tool_mergeusers: %s, log id %d", p.seq, p.from, p.to, outcome, l.ID))
	}
	rep.Log = append(rep.Log, fmt.Sprintf("%d of %d pairs handed to tool_mergeusers, %d refused", len(rep.Merged), len(pairs), len(rep.Refused)))
	return rep, nil
}

type listedPair struct {
	seq              int
	from, to         int64
	fromName, toName string
	fromBad, toBad   bool
}

func (s *Site) refusal(p listedPair, refusedFrom map[int64]bool) (code, reason string) {
	switch {
	case p.fromBad || p.toBad:
		return RefuseBadIDs, "the user ids are not positive numbers"
	case p.from == p.to:
		return RefuseBadIDs, "merges an account into itself"
	}
	for _, a := range []struct {
		id   int64
		name string
	}{{p.from, p.fromName}, {p.to, p.toName}} {
		u := s.users[a.id]
		switch {
		case u == nil:
			return RefuseNoUser, fmt.Sprintf("user %d does not exist", a.id)
		case u.Username != a.name:
			return RefuseUsername, fmt.Sprintf("user %d is %q now, not %q", a.id, u.Username, a.name)
		}
	}
	for _, l := range s.merges {
		if l.Success && l.FromUserID == p.from {
			return RefuseMerged, fmt.Sprintf("user %d was already merged into %d (log id %d)", p.from, l.ToUserID, l.ID)
		}
	}
	for _, l := range s.merges {
		if l.Success && l.FromUserID == p.to {
			return RefuseTargetGone, fmt.Sprintf("user %d, to keep, was merged into %d (log id %d)", p.to, l.ToUserID, l.ID)
		}
	}
	if refusedFrom[p.to] {
		return RefuseRefusedKept, fmt.Sprintf("user %d, to keep, is the account to remove of a pair refused before", p.to)
	}
	return "", ""
}

// readMergeList reads a merge list whole.
func readMergeList(r io.Reader) ([]listedPair, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("merge list: reading the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, c := range mergeListColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("merge list: no column %s: not a merge list, nothing merged", c)
		}
	}
	var out []listedPair
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("merge list: line %d: %w: nothing merged", line, err)
		}
		p := listedPair{fromName: rec[col["from_username"]], toName: rec[col["to_username"]]}
		if seq, err := strconv.Atoi(rec[col["seq"]]); err != nil || seq != len(out)+1 {
			return nil, fmt.Errorf("merge list: line %d: seq %q is not %d: the pairs are not in order, nothing merged", line, rec[col["seq"]], len(out)+1)
		} else {
			p.seq = seq
		}
		p.from, p.fromBad = positive(rec[col["from_userid"]])
		p.to, p.toBad = positive(rec[col["to_userid"]])
		out = append(out, p)
	}
}

func positive(s string) (id int64, bad bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err != nil || id <= 0
}
