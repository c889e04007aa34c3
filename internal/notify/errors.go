package notify

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrNotConfigured: no mail relay is configured (notify.smtp.host is empty).
var ErrNotConfigured = errors.New("mail is not configured (notify.smtp.host is empty)")

// RecipientsError lists the recipients the relay refused, with its replies.
// When some were accepted, the mail went to them.
type RecipientsError struct {
	Rejected map[string]string // address -> the relay's reply
}

func (e *RecipientsError) add(addr string, err error) {
	if e.Rejected == nil {
		e.Rejected = map[string]string{}
	}
	e.Rejected[addr] = err.Error()
}

func (e *RecipientsError) Error() string {
	addrs := make([]string, 0, len(e.Rejected))
	for a := range e.Rejected {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = fmt.Sprintf("%s (%s)", a, e.Rejected[a])
	}
	return "the relay refused " + strings.Join(parts, ", ")
}
