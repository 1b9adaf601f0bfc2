package payload

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// maxListItems bounds the items the parser keeps of any one list. A list
// costs more decoded than sent: `{},` is three bytes of a body and an entity
// struct of fifty to three hundred once decoded, so a 1 MiB body of empty
// entities decoded into a slice would allocate some hundreds of MiB. Past
// the bound, items are decoded one at a time into the same variable and
// counted. It is four times the largest list a ProblemEvent keeps
// (MaxEntityCount, MaxTagCount), so that the repeated items bound drops
// still leave a full list.
const maxListItems = 1024

// list is a JSON array decoded one item at a time: it keeps the first
// maxListItems items that are not empty (the zero value, which says
// nothing and which bound drops anyway) and counts the rest.
type list[T comparable] struct {
	items []T
	// more counts the items past the first maxListItems.
	more int
}

// UnmarshalJSON decodes data, a JSON array or null, item by item.
func (l *list[T]) UnmarshalJSON(data []byte) error {
	switch kindOf(data) {
	case "null":
		return nil
	case "array":
	default:
		return &json.UnmarshalTypeError{Value: kindOf(data), Type: reflect.TypeFor[[]T]()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the [
		return err
	}
	var zero T
	item := new(T)
	for dec.More() {
		*item = zero
		if err := dec.Decode(item); err != nil {
			return err
		}
		switch {
		case *item == zero:
		case len(l.items) == maxListItems:
			l.more++
		default:
			l.items = append(l.items, *item)
		}
	}
	_, err := dec.Token() // the ]
	return err
}

// splitList splits a comma-separated placeholder such as Tags into at most
// maxListItems items, and counts the items past them.
func splitList(s string) (items []string, more int) {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if len(items) == maxListItems {
			more++
			continue
		}
		items = append(items, item)
	}
	return items, more
}
