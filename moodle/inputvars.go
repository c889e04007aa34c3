package moodle

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// InputVars is what MeasureInputVars found of a site's PHP max_input_vars.
type InputVars struct {
	// Limit is max_input_vars: PHP keeps Limit+1 variables of a request's
	// body (and as many of its query), and drops the rest without a word.
	Limit int
	// AtLeast says the site kept everything up to the largest request
	// tried: Limit is then a lower bound.
	AtLeast  bool
	Requests int
}

// MeasureInputVars finds the site's max_input_vars with reads only, in
// about log2(upTo) requests: core_user_get_users_by_field by id with n
// values, all "0" (no user) but the last, the web-service user's own id
// (its details are always shown to itself). The user comes back exactly
// when PHP kept all 4 + n variables. It needs site info read first (for the
// user's id) and ignores the client's own max input vars, which is what is
// being checked.
func (c *Client) MeasureInputVars(ctx context.Context, upTo int) (InputVars, error) {
	const function = "core_user_get_users_by_field"
	info := c.Site()
	if info == nil || info.UserID <= 0 {
		return InputVars{}, fmt.Errorf("measuring max_input_vars: ask the site who it is (SiteInfo) first")
	}
	self := strconv.FormatInt(int64(info.UserID), 10)
	var m InputVars
	// kept reports whether a request of total variables arrived whole.
	kept := func(total int) (bool, error) {
		n := total - 4 // wstoken, wsfunction, moodlewsrestformat, field
		values := make([]string, n)
		for i := range values[:n-1] {
			values[i] = "0"
		}
		values[n-1] = self
		f := newForm(c.token, function)
		if err := f.params(P("field", "id", "values", values)); err != nil {
			return false, err
		}
		m.Requests++
		body, err := c.do(ctx, function, f, true)
		if err != nil {
			return false, fmt.Errorf("measuring max_input_vars with %d variables: %w", total, err)
		}
		var users []struct {
			ID Int `json:"id"`
		}
		if err := json.Unmarshal(body, &users); err != nil {
			return false, fmt.Errorf("measuring max_input_vars: %w", err)
		}
		return len(users) == 1 && users[0].ID == info.UserID, nil
	}
	lo, hi := 5, max(upTo, 6) // lo: known to arrive whole; hi: the largest to try
	ok, err := kept(lo)
	if err != nil {
		return m, err
	}
	if !ok {
		return m, fmt.Errorf("measuring max_input_vars: the web-service user's own details did not come back by id, even in a request of %d variables", lo)
	}
	if ok, err = kept(hi); err != nil {
		return m, err
	} else if ok {
		m.Limit, m.AtLeast = hi-1, true
		return m, nil
	}
	for hi-lo > 1 { // lo arrives whole, hi does not
		mid := lo + (hi-lo)/2
		ok, err := kept(mid)
		if err != nil {
			return m, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	m.Limit = lo - 1
	return m, nil
}
