package moodletest

import (
	"encoding/json"
	"fmt"
	"os"
)

// MergeListCases are the cases MIM's gathering for tool_mergeusers is
// tested on, in moodle-side/tool_mergeusers/tests/cases.json: the PHP
// gathering and RunMergeList must both hand over and refuse what each case
// wants.
type MergeListCases struct {
	// Users are the site's accounts (deleted ones too: Moodle keeps them,
	// marked deleted; the simulator has none).
	Users []struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
		Deleted  bool   `json:"deleted"`
	} `json:"users"`
	Cases []MergeListCase `json:"cases"`
}

// MergeListCase is one merge list run against MergeListCases.Users.
type MergeListCase struct {
	Name string `json:"name"`
	// Log is the plugin's log before the run.
	Log []struct {
		From    int64 `json:"from"`
		To      int64 `json:"to"`
		Success bool  `json:"success"`
	} `json:"log"`
	File string `json:"file"` // the merge list
	Want struct {
		Merged  [][3]int64 `json:"merged"`  // seq, from, to
		Refused [][2]any   `json:"refused"` // seq (a JSON number), refusal code
		Error   string     `json:"error"`   // what a list refused whole says
	} `json:"want"`
}

// ReadMergeListCases reads the cases file.
func ReadMergeListCases(path string) (*MergeListCases, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cs MergeListCases
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &cs, nil
}
