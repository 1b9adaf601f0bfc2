package dynatrace

// Answers are decoded as they are read, one list item at a time. The
// environment's URL and token are a tenant's, so its answers are not
// trusted, and an answer bounded in bytes is not bounded in what it decodes
// to: each "{}" of a list, three bytes, would become a struct of a hundred
// bytes or more. So each list keeps at most the items problemhook uses and
// drops the empty ones, and the pages of one call share a budget of bytes
// read and of bytes kept.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Bounds of the lists of a problem. A list that holds more keeps its first
// items and marks the problem Truncated, as a notification is cut to the
// bounds of a ProblemEvent: the entities, tags and zones take those same
// bounds, past which an event drops them anyway.
const (
	// maxEntities bounds the affected and impacted entities and the impacts.
	maxEntities = problemhookv1alpha1.MaxEntityCount
	// maxTags bounds the entity tags.
	maxTags = problemhookv1alpha1.MaxTagCount
	// maxZones bounds the management zones.
	maxZones = problemhookv1alpha1.MaxZoneCount
	// maxEvidence bounds the evidence details; an event's details show the
	// first 20.
	maxEvidence = 64
	// maxShortList bounds the lists problemhook does not read but keeps for
	// callers: problem filters, recent comments, Kubernetes names, the
	// warnings of a page, and the members of a settings object's value.
	maxShortList = 64
	// mapEntrySize is what a member of a settings object's value is
	// counted at against the budget.
	mapEntrySize = 64
)

// budget bounds one call across its pages and their attempts: the bytes its
// answers may hold, and the bytes the items it keeps take once decoded,
// each counted at its struct's size (their strings take at most the bytes
// read). Each is spent only by an answer read whole.
type budget struct {
	read, keep int64
	// total is what the call started with, for messages.
	total int64
}

func newBudget(bytes int) *budget {
	return &budget{read: int64(bytes), keep: int64(bytes), total: int64(bytes)}
}

// budgetError is an answer beyond what is left of its call's budget.
type budgetError struct {
	// limit is what was left; total what the call started with.
	limit, total int64
	// kept says that the items kept, not the bytes read, went past it.
	kept bool
}

func (e *budgetError) Error() string {
	switch {
	case e.kept:
		return fmt.Sprintf("response decodes to more than %d bytes of items", e.total)
	case e.limit < e.total:
		return fmt.Sprintf("response larger than the %d bytes left of the %d the call may read", e.limit, e.total)
	}
	return fmt.Sprintf("response larger than %d bytes", e.limit)
}

// errStop ends the decoding of an answer that has given what its caller
// needs: the rest is not read.
var errStop = errors.New("dynatrace: decoding stopped")

// decoder decodes one answer as it is read.
type decoder struct {
	dec *json.Decoder
	// keep is the bytes left for kept items; the call's budget takes it
	// once the answer is read whole.
	keep, total int64
	// cut is set when a list held more items than it keeps.
	cut bool
}

func newDecoder(r io.Reader, b *budget) *decoder {
	return &decoder{dec: json.NewDecoder(r), keep: b.keep, total: b.total}
}

// value decodes the next value into v, which holds no list of its own.
func (d *decoder) value(v any) error { return d.dec.Decode(v) }

// skip reads past the next value.
func (d *decoder) skip() error { return d.dec.Decode(&skipped{}) }

// skipped is a value read past: its bytes are never copied or decoded.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// charge counts size bytes of kept items against the budget.
func (d *decoder) charge(size int) error {
	if d.keep -= int64(size); d.keep < 0 {
		return &budgetError{total: d.total, kept: true}
	}
	return nil
}

// end checks that nothing but white space follows the value.
func (d *decoder) end() error {
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// object reads an object, or null, calling member with each member's name;
// member decodes or skips the value. It reports whether there was an
// object.
func (d *decoder) object(member func(name string) error) (bool, error) {
	if ok, err := d.open('{', "an object"); !ok || err != nil {
		return false, err
	}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return true, err
		}
		name, _ := tok.(string) // the decoder returns a member's name as a string
		if err := member(name); err != nil {
			return true, err
		}
	}
	_, err := d.dec.Token()
	return true, err
}

// array reads an array, or null, calling item for each item; item decodes
// or skips it. It reports whether there was an array.
func (d *decoder) array(item func() error) (bool, error) {
	if ok, err := d.open('[', "an array"); !ok || err != nil {
		return false, err
	}
	for d.dec.More() {
		if err := item(); err != nil {
			return true, err
		}
	}
	_, err := d.dec.Token()
	return true, err
}

// open reads the delimiter that opens an object or array, or null.
func (d *decoder) open(delim json.Delim, want string) (bool, error) {
	tok, err := d.dec.Token()
	switch {
	case err != nil:
		return false, err
	case tok == nil:
		return false, nil
	case tok != delim:
		return false, fmt.Errorf("got %s, want %s", kind(tok), want)
	}
	return true, nil
}

// kind names what a token is, never its value: that is the server's text.
func kind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", tok)
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "a value"
}

// list decodes an array, or null, into *dst: the first limit items that
// are not empty, each decoded whole. The items past them are read past and
// set d.cut: a list is cut, as a notification's lists are, rather than
// refused.
func list[T comparable](d *decoder, dst *[]T, limit int) error {
	var zero T
	size := int(reflect.TypeFor[T]().Size())
	item := new(T) // one for all items: an empty item costs nothing
	*dst = (*dst)[:0]
	isArray, err := d.array(func() error {
		if len(*dst) == limit {
			d.cut = true
			return d.skip()
		}
		*item = zero
		if err := d.value(item); err != nil || *item == zero {
			return err
		}
		if err := d.charge(size); err != nil {
			return err
		}
		*dst = append(*dst, *item)
		return nil
	})
	if isArray && *dst == nil {
		*dst = []T{}
	}
	return err
}

// stringList decodes an array of strings, or null, into *dst, refusing one
// of more than maxShortList items, empty ones included. It does not cut the list as
// list does: the decoder allocates for each string it reads, even one it
// reads past, so reading past a long list would cost what cutting saves.
// problemhook reads none of these lists; Dynatrace's are short.
func stringList(d *decoder, dst *[]string, name string) error {
	size := int(reflect.TypeFor[string]().Size())
	*dst = (*dst)[:0]
	n := 0
	isArray, err := d.array(func() error {
		if n++; n > maxShortList {
			return fmt.Errorf("%s holds more than %d items", name, maxShortList)
		}
		var s string
		if err := d.value(&s); err != nil || s == "" {
			return err
		}
		if err := d.charge(size); err != nil {
			return err
		}
		*dst = append(*dst, s)
		return nil
	})
	if isArray && *dst == nil {
		*dst = []string{}
	}
	return err
}

// objectMember is a type decoded member by member, because it holds lists.
type objectMember[T any] interface {
	*T
	member(d *decoder, name string) error
}

// optional decodes an object into a new T that *dst then points to, or a
// null into nil.
func optional[T any, P objectMember[T]](d *decoder, dst **T) error {
	v := new(T)
	ok, err := d.object(func(name string) error { return P(v).member(d, name) })
	*dst = nil
	if ok {
		*dst = v
	}
	return err
}

// decodeProblem decodes a problem, or null, into p, noting in p.Truncated
// whether a list was cut. It reports whether there was a problem.
func decodeProblem(d *decoder, p *Problem) (bool, error) {
	d.cut = false
	ok, err := d.object(func(name string) error { return p.member(d, name) })
	p.Truncated = d.cut
	return ok, err
}

// UnmarshalJSON decodes a problem within the bounds of a problem the
// client reads.
func (p *Problem) UnmarshalJSON(data []byte) error {
	d := newDecoder(bytes.NewReader(data), newBudget(MaxResponseBytes))
	*p = Problem{}
	if _, err := decodeProblem(d, p); err != nil {
		return err
	}
	return d.end()
}

func (p *Problem) member(d *decoder, name string) error {
	switch name {
	case "problemId":
		return d.value(&p.ProblemID)
	case "displayId":
		return d.value(&p.DisplayID)
	case "title":
		return d.value(&p.Title)
	case "impactLevel":
		return d.value(&p.ImpactLevel)
	case "severityLevel":
		return d.value(&p.SeverityLevel)
	case "status":
		return d.value(&p.Status)
	case "startTime":
		return d.value(&p.StartTime)
	case "endTime":
		return d.value(&p.EndTime)
	case "affectedEntities":
		return list(d, &p.AffectedEntities, maxEntities)
	case "impactedEntities":
		return list(d, &p.ImpactedEntities, maxEntities)
	case "rootCauseEntity":
		return d.value(&p.RootCauseEntity)
	case "managementZones":
		return list(d, &p.ManagementZones, maxZones)
	case "entityTags":
		return list(d, &p.EntityTags, maxTags)
	case "problemFilters":
		return list(d, &p.ProblemFilters, maxShortList)
	case "evidenceDetails":
		return optional(d, &p.EvidenceDetails)
	case "impactAnalysis":
		return optional(d, &p.ImpactAnalysis)
	case "recentComments":
		return optional(d, &p.RecentComments)
	case "k8s.cluster.name":
		return stringList(d, &p.K8sClusterName, name)
	case "k8s.cluster.uid":
		return stringList(d, &p.K8sClusterUID, name)
	case "k8s.namespace.name":
		return stringList(d, &p.K8sNamespaceName, name)
	}
	return d.skip()
}

func (e *EvidenceDetails) member(d *decoder, name string) error {
	switch name {
	case "totalCount":
		return d.value(&e.TotalCount)
	case "details":
		return list(d, &e.Details, maxEvidence)
	}
	return d.skip()
}

func (a *ImpactAnalysis) member(d *decoder, name string) error {
	if name == "impacts" {
		return list(d, &a.Impacts, maxEntities)
	}
	return d.skip()
}

func (l *CommentList) member(d *decoder, name string) error {
	switch name {
	case "totalCount":
		return d.value(&l.TotalCount)
	case "pageSize":
		return d.value(&l.PageSize)
	case "nextPageKey":
		return d.value(&l.NextPageKey)
	case "comments":
		return list(d, &l.Comments, maxShortList)
	}
	return d.skip()
}

// pageItems reads the array of a page's items, refusing more than
// MaxPageSize of them: that is the most the API puts on a page, and every
// listing asks for at most that many. A page that holds more is no
// Dynatrace answer, and cutting it would lose items silently.
func pageItems(d *decoder, what string, item func() error) error {
	n := 0
	_, err := d.array(func() error {
		if n++; n > MaxPageSize {
			return fmt.Errorf("the page holds more than %d %s, the most the API puts on a page", MaxPageSize, what)
		}
		return item()
	})
	return err
}

func (pg *problemPage) member(d *decoder, name string) error {
	switch name {
	case "nextPageKey":
		return d.value(&pg.NextPageKey)
	case "warnings":
		return stringList(d, &pg.Warnings, name)
	case "problems":
		size := int(reflect.TypeFor[Problem]().Size())
		return pageItems(d, "problems", func() error {
			var p Problem
			// A problem without an id is nothing problemhook can name,
			// read or record.
			if _, err := decodeProblem(d, &p); err != nil || p.ProblemID == "" {
				return err
			}
			if err := d.charge(size); err != nil {
				return err
			}
			pg.Problems = append(pg.Problems, p)
			return nil
		})
	}
	return d.skip()
}

// settingsPage is one page of GET /settings/objects.
type settingsPage struct {
	Items       []SettingsObject
	NextPageKey string
}

func (pg *settingsPage) member(d *decoder, name string) error {
	switch name {
	case "nextPageKey":
		return d.value(&pg.NextPageKey)
	case "items":
		size := int(reflect.TypeFor[SettingsObject]().Size())
		return pageItems(d, "settings objects", func() error {
			var o SettingsObject
			// An object without an id is nothing problemhook can use.
			if _, err := d.object(func(name string) error { return o.member(d, name) }); err != nil || o.ObjectID == "" {
				return err
			}
			if err := d.charge(size); err != nil {
				return err
			}
			pg.Items = append(pg.Items, o)
			return nil
		})
	}
	return d.skip()
}

func (o *SettingsObject) member(d *decoder, name string) error {
	switch name {
	case "objectId":
		return d.value(&o.ObjectID)
	case "externalId":
		return d.value(&o.ExternalID)
	case "value":
		o.Value = nil
		_, err := d.object(func(name string) error {
			var v scalar
			if err := d.value(&v); err != nil || v.v == nil {
				return err
			}
			if len(o.Value) == maxShortList {
				return nil
			}
			if err := d.charge(mapEntrySize); err != nil {
				return err
			}
			if o.Value == nil {
				o.Value = map[string]any{}
			}
			o.Value[name] = v.v
			return nil
		})
		return err
	}
	return d.skip()
}

// scalar decodes a string, number or boolean; an object, an array or null
// leaves it nil, unread.
type scalar struct{ v any }

func (s *scalar) UnmarshalJSON(data []byte) error {
	switch data[0] {
	case '{', '[', 'n':
		return nil
	}
	return json.Unmarshal(data, &s.v)
}
