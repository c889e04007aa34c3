package moodle

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// User is a Moodle account as user details describe it. Moodle leaves out
// empty optional fields (idnumber, institution, city, customfields) and
// shows account fields (auth, suspended) only to those who may see them.
type User struct {
	ID           Int             `json:"id"`
	Username     string          `json:"username"`
	FirstName    string          `json:"firstname"`
	LastName     string          `json:"lastname"`
	FullName     string          `json:"fullname"`
	Email        string          `json:"email"`
	IDNumber     string          `json:"idnumber"`
	Auth         string          `json:"auth"`
	Suspended    Bool            `json:"suspended"`
	Department   string          `json:"department"`
	Institution  string          `json:"institution"`
	City         string          `json:"city"`
	Country      string          `json:"country"`
	FirstAccess  Int             `json:"firstaccess"`
	LastAccess   Int             `json:"lastaccess"`
	CustomFields []CustomField   `json:"customfields"`
	Raw          json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *User) UnmarshalJSON(b []byte) error {
	type plain User
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// Field returns a custom profile field's value by shortname.
func (x *User) Field(shortname string) (string, bool) {
	for _, f := range x.CustomFields {
		if f.ShortName == shortname {
			return string(f.Value), true
		}
	}
	return "", false
}

// CustomField is one custom profile field value.
type CustomField struct {
	Type         string `json:"type"`
	Value        Text   `json:"value"`
	DisplayValue Text   `json:"displayvalue"`
	Name         string `json:"name"`
	ShortName    string `json:"shortname"`
}

// GetUsers returns the users matching every criterion (id, username,
// idnumber, auth exactly; firstname, lastname, email with SQL LIKE), of
// those whose searched fields are not empty in what the token may see:
// Moodle finds users in SQL, then drops each whose details lack a searched
// field or have it empty (email LIKE '%' leaves out every account without
// an e-mail). With no criteria it asks for lastname LIKE '%', which leaves
// out fewest; EachUser reads the rest too.
//
// Moodle ignores a criterion key it does not support and then returns
// every user, with a warning (invalidfieldparameter). GetUsers turns that
// into an *Error of kind InvalidParameter rather than returning a whole
// site as if it matched. Other warnings are returned.
func (c *Client) GetUsers(ctx context.Context, criteria ...Criterion) ([]User, []Warning, error) {
	const fn = "core_user_get_users"
	var out struct {
		Users    []User    `json:"users"`
		Warnings []Warning `json:"warnings"`
	}
	if err := c.Call(ctx, fn, P("criteria", criteriaParam(usersCriteria(criteria))), &out); err != nil {
		return nil, nil, err
	}
	if err := ignoredCriterion(fn, out.Warnings); err != nil {
		return nil, out.Warnings, err
	}
	return out.Users, out.Warnings, nil
}

// usersCriteria is criteria, or lastname LIKE '%' when empty: Moodle's
// forms require a last name, so it leaves out fewest accounts.
func usersCriteria(criteria []Criterion) []Criterion {
	if len(criteria) == 0 {
		return []Criterion{{Key: "lastname", Value: "%"}}
	}
	return criteria
}

// ignoredCriterion is the *Error of kind InvalidParameter for Moodle's
// warning that it ignored a criterion (and so answered with every user).
func ignoredCriterion(fn string, warnings []Warning) error {
	for _, w := range warnings {
		if w.WarningCode == "invalidfieldparameter" {
			return &Error{Function: fn, Exception: "warning", ErrorCode: w.WarningCode, Message: w.Message, Kind: InvalidParameter}
		}
	}
	return nil
}

// EachUser calls fn with every user GetUsers would return, one at a time
// as the answer is decoded, so that a site's whole user list is never held
// in memory at once. A read that fails part way is sent again, as GetUsers'
// would be, and the users fn has already seen are not passed to it again;
// an error from fn ends the read and is returned as is.
//
// With no criteria it reads every user whatever fields are empty: Moodle
// drops from a criterion's answer each user whose searched field is empty,
// so it reads lastname LIKE '%' and then email LIKE '%' and passes on the
// union. Only an account with neither a last name nor an e-mail address
// (which Moodle's forms do not allow) escapes both. Reading the gaps by id
// instead would name deleted accounts, which Moodle's get_users_by_field
// does not skip.
//
// Moodle sends its warnings after the users: when one says a criterion
// was ignored (invalidfieldparameter), the *Error of kind InvalidParameter
// comes after fn has seen every user, and the caller must discard them.
// Other warnings are returned, as by GetUsers, for the caller to decide.
func (c *Client) EachUser(ctx context.Context, criteria []Criterion, fn func(*User) error) ([]Warning, error) {
	if len(criteria) > 0 {
		return c.eachMatching(ctx, criteria, nil, fn)
	}
	seen := map[Int]struct{}{}
	var warnings []Warning
	for _, cr := range EveryUser {
		w, err := c.eachMatching(ctx, []Criterion{cr}, seen, fn)
		warnings = append(warnings, w...)
		if err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// EveryUser are the criteria EachUser reads one after the other when it is
// given none, to find every user whatever fields are empty.
var EveryUser = []Criterion{{Key: "lastname", Value: "%"}, {Key: "email", Value: "%"}}

// eachMatching streams core_user_get_users for criteria into fn, adding
// every id it passes on to seen (a map of its own when nil).
func (c *Client) eachMatching(ctx context.Context, criteria []Criterion, seen map[Int]struct{}, fn func(*User) error) ([]Warning, error) {
	const function = "core_user_get_users"
	f := newForm(c.token, function)
	if err := f.params(P("criteria", criteriaParam(criteria))); err != nil {
		return nil, fmt.Errorf("calling %s: %w", function, err)
	}
	if seen == nil {
		seen = map[Int]struct{}{}
	}
	var warnings []Warning
	err := c.streamed(ctx, function, f, func(dec *json.Decoder) error {
		warnings = warnings[:0]
		return objectMembers(dec, func(name string) error {
			switch name {
			case "users":
				return arrayItems(dec, func() error {
					var u User
					if err := dec.Decode(&u); err != nil {
						return err
					}
					if _, dup := seen[u.ID]; dup {
						return nil
					}
					seen[u.ID] = struct{}{}
					if err := fn(&u); err != nil {
						return &consumerError{err}
					}
					return nil
				})
			case "warnings":
				return arrayItems(dec, func() error {
					var w Warning
					if err := dec.Decode(&w); err != nil {
						return err
					}
					warnings = append(warnings, w)
					return nil
				})
			}
			return skipValue(dec)
		})
	})
	if err != nil {
		return nil, err
	}
	return warnings, ignoredCriterion(function, warnings)
}

// GetUsersByField returns the users whose field (id, idnumber, username,
// email) is one of values, ordered by id. Long lists are split across
// requests. Users the token may not see are silently left out by Moodle.
func (c *Client) GetUsersByField(ctx context.Context, field string, values []string) ([]User, error) {
	const fn = "core_user_get_users_by_field"
	var out []User
	err := splitRead(ctx, c, fn, P("field", field), "values", values, func(body []byte) error {
		var part []User
		if err := decodeInto(fn, body, &part); err != nil {
			return err
		}
		out = append(out, part...)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// NewUser is an account to create.
type NewUser struct {
	Username       string // lower case
	Password       string
	CreatePassword bool // let Moodle generate and mail one instead
	FirstName      string
	LastName       string
	Email          string
	Auth           string // manual when empty
	IDNumber       string
	Department     string
	Institution    string
	City           string
	Country        string
	// CustomFields are profile field values by shortname; Moodle ignores
	// fields that do not exist.
	CustomFields map[string]string
}

// CreatedUser is Moodle's answer for a created account.
type CreatedUser struct {
	ID       Int    `json:"id"`
	Username string `json:"username"`
}

// CreateUsers creates accounts (tests and the demo).
func (c *Client) CreateUsers(ctx context.Context, users []NewUser) (*BatchResult[CreatedUser], error) {
	return writeBatch(ctx, c, batch[NewUser, CreatedUser]{
		function: "core_user_create_users",
		list:     "users",
		encode: func(u NewUser) any {
			p := P("username", u.Username)
			if u.CreatePassword {
				p = append(p, Param{"createpassword", true})
			} else if u.Password != "" {
				p = append(p, Param{"password", u.Password})
			}
			p = append(p, Param{"firstname", u.FirstName}, Param{"lastname", u.LastName}, Param{"email", u.Email})
			for _, kv := range []Param{{"auth", u.Auth}, {"idnumber", u.IDNumber}, {"department", u.Department},
				{"institution", u.Institution}, {"city", u.City}, {"country", u.Country}} {
				if kv.Value != "" {
					p = append(p, kv)
				}
			}
			if len(u.CustomFields) > 0 {
				keys := make([]string, 0, len(u.CustomFields))
				for k := range u.CustomFields {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				cfs := make([]Params, len(keys))
				for i, k := range keys {
					cfs[i] = P("type", k, "value", u.CustomFields[k])
				}
				p = append(p, Param{"customfields", cfs})
			}
			return p
		},
		decode:   decodeList[CreatedUser]("core_user_create_users"),
		check:    func(_ NewUser, v CreatedUser) error { return positiveID("user", v.ID) },
		describe: func(u NewUser) string { return u.Username },
	}, users)
}
