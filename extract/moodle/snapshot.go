package moodle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/moodle"
)

// category is what the extraction keeps of a category: enough to resolve
// the configured category limits.
type category struct {
	id       int64
	idnumber string
	path     string // "/1/4/9": the ids of its ancestors and its own
}

// course is what the extraction keeps of a course while it reads the
// per-course entities: never the payload.
type course struct {
	id       int64
	category int64
	site     bool // the front page (id 1, format "site"): it has no enrolments to read
}

func (c course) scope() string { return strconv.FormatInt(c.id, 10) }

// readCategories lands every category (scope "") and returns them.
func (x *extraction) readCategories(ctx context.Context) ([]category, error) {
	o := x.open(ctx, entCategories)
	failed := func(err error) ([]category, error) {
		err = fmt.Errorf("reading categories (%s): %w", fnCategories, err)
		o.abort(err, true)
		return nil, err
	}
	if err := x.lacks(fnCategories); err != nil {
		return failed(err)
	}
	cs, err := x.client.GetCategories(ctx)
	if err != nil {
		return failed(err)
	}
	x.expect(entCategories, len(cs))
	out := make([]category, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		if err := o.write(ctx, strconv.FormatInt(int64(c.ID), 10), "", c.Raw); err != nil {
			return failed(err)
		}
		out = append(out, category{id: int64(c.ID), idnumber: c.IDNumber, path: c.Path})
	}
	o.complete("")
	o.commit(ctx)
	x.done(entCategories, len(cs))
	return out, nil
}

// readCourses lands every course, the site course included (scope ""), and
// returns them in id order.
func (x *extraction) readCourses(ctx context.Context) ([]course, error) {
	o := x.open(ctx, entCourses)
	failed := func(err error) ([]course, error) {
		err = fmt.Errorf("reading courses (%s): %w", fnCourses, err)
		o.abort(err, true)
		return nil, err
	}
	if err := x.lacks(fnCourses); err != nil {
		return failed(err)
	}
	cs, err := x.client.GetCourses(ctx)
	if err != nil {
		return failed(err)
	}
	x.expect(entCourses, len(cs))
	out := make([]course, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		if err := o.write(ctx, strconv.FormatInt(int64(c.ID), 10), "", c.Raw); err != nil {
			return failed(err)
		}
		out = append(out, course{id: int64(c.ID), category: int64(c.CategoryID),
			site: c.Format == "site" || (x.info != nil && c.ID == x.info.SiteID && c.ID != 0)})
	}
	o.complete("")
	o.commit(ctx)
	x.done(entCourses, len(cs))
	slices.SortFunc(out, func(a, b course) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// readUsers lands every user the configured criteria select (scope "") and
// the profile fields harvested from their customfields. Moodle has no
// paging for users: the answer is one response.
func (x *extraction) readUsers(ctx context.Context) {
	users, fields := x.open(ctx, entUsers), x.open(ctx, entProfileFields)
	failed := func(err error) {
		err = fmt.Errorf("reading users (%s): %w", fnUsers, err)
		users.abort(err, true)
		fields.abort(err, true)
	}
	if err := x.lacks(fnUsers); err != nil {
		failed(err)
		return
	}
	criteria := make([]moodle.Criterion, len(x.site.UserCriteria))
	for i, c := range x.site.UserCriteria {
		criteria[i] = moodle.Criterion{Key: c.Key, Value: c.Value}
	}
	harvested := map[string]harvestedField{}
	// The users are landed as they are decoded: a site's whole list is
	// never held at once (a large university's is tens of megabytes).
	warnings, err := x.client.EachUser(ctx, criteria, func(u *moodle.User) error {
		if err := users.write(ctx, strconv.FormatInt(int64(u.ID), 10), "", u.Raw); err != nil {
			return err
		}
		x.done(entUsers, 1)
		for _, cf := range u.CustomFields {
			if cf.ShortName == "" {
				continue
			}
			if err := harvest(harvested, int64(u.ID), profileField{ShortName: cf.ShortName, Name: cf.Name, Type: cf.Type}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		failed(err)
		return
	}
	if len(warnings) > 0 {
		// Moodle left something out: no user may be taken for deleted.
		msgs := make([]string, len(warnings))
		for i, w := range warnings {
			msgs[i] = w.String()
		}
		werr := fmt.Errorf("%s answered with warnings, so the list may be incomplete: %s", fnUsers, strings.Join(msgs, "; "))
		users.fail("", werr)
		fields.fail("", werr)
	} else {
		users.complete("")
		fields.complete("")
	}
	users.commit(ctx)
	if err := x.landProfileFields(ctx, fields, harvested); err != nil {
		fields.abort(fmt.Errorf("harvesting profile fields: %w", err), true)
	}
}

// harvestedField is a profile field definition seen in users' customfields.
type harvestedField struct {
	user    int64 // the lowest user id it was seen on
	payload []byte
}

// harvest notes a profile field seen on user. The definition is the same on
// every user; the lowest user id decides, so a re-run writes the same bytes.
func harvest(harvested map[string]harvestedField, user int64, f profileField) error {
	if prev, seen := harvested[f.ShortName]; seen && prev.user <= user {
		return nil
	}
	p, err := marshal(f)
	if err != nil {
		return err
	}
	harvested[f.ShortName] = harvestedField{user: user, payload: p}
	return nil
}

// landProfileFields writes the harvested profile fields, by shortname, and
// commits them; the scope "" was declared with the users'.
func (x *extraction) landProfileFields(ctx context.Context, o *entityOut, harvested map[string]harvestedField) error {
	if o == nil {
		return nil
	}
	names := make([]string, 0, len(harvested))
	for k := range harvested {
		names = append(names, k)
	}
	slices.Sort(names)
	x.expect(entProfileFields, len(names))
	for _, k := range names {
		if err := o.write(ctx, k, "", harvested[k].payload); err != nil {
			return err
		}
	}
	o.commit(ctx)
	x.done(entProfileFields, len(names))
	return nil
}

// profileField is a profile_fields payload.
type profileField struct {
	ShortName string `json:"shortname"`
	Name      string `json:"name"`
	Type      string `json:"type"`
}

// limit resolves a configured category limit (category idnumbers) to the
// ids of those categories and of every category below them. what names
// the setting in errors.
func limit(what string, cats []category, catErr error, idnumbers []string) (map[int64]bool, error) {
	if catErr != nil {
		return nil, fmt.Errorf("%s are limited to categories, but the categories could not be read: %w", what, catErr)
	}
	roots := map[int64]bool{}
	for _, want := range idnumbers {
		found := false
		for _, c := range cats {
			if c.idnumber == want {
				roots[c.id], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s.categories names %q, but no category on the site has that idnumber", what, want)
		}
	}
	in := map[int64]bool{}
	for _, c := range cats {
		if roots[c.id] {
			in[c.id] = true
			continue
		}
		for _, p := range strings.Split(c.path, "/") {
			if id, err := strconv.ParseInt(p, 10, 64); err == nil && roots[id] {
				in[c.id] = true
				break
			}
		}
	}
	return in, nil
}
