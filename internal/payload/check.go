package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// checkJSON reports why data is not exactly one JSON value of the kind want
// ('{' or '['), nested at most MaxDepth deep, with no key twice in an object
// and at most MaxMembers members.
// encoding/json would keep the last of two equal keys where other parsers keep
// the first; refusing them keeps everyone reading the same notification.
func checkJSON(data []byte, want json.Delim) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number too large for a float64 is still JSON
	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("empty input")
	case err != nil:
		return at(dec, err)
	case tok != want:
		return fmt.Errorf("found %s", kindOf(data))
	}
	if err := checkNested(dec, want); err != nil {
		return at(dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return at(dec, fmt.Errorf("data after the %s", kindName(want)))
	}
	return nil
}

// at says where in the body err was found: the offset of a syntax error,
// else the end of the last token read. A sender can find what broke.
func at(dec *json.Decoder, err error) error {
	offset := dec.InputOffset()
	if syn := (*json.SyntaxError)(nil); errors.As(err, &syn) {
		offset = syn.Offset
	}
	return fmt.Errorf("%w at byte %d", err, offset)
}

// checkNested reads the tokens of the container opened by open up to its
// matching close.
func checkNested(dec *json.Decoder, open json.Delim) error {
	stack := []container{newContainer(open)}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if err := stack[len(stack)-1].next(tok); err != nil {
			return err
		}
		if open, ok := tok.(json.Delim); ok {
			if len(stack) == MaxDepth {
				return fmt.Errorf("nested deeper than %d levels", MaxDepth)
			}
			stack = append(stack, newContainer(open))
		}
	}
	return nil
}

// container is an array or object that checkNested has opened and not closed.
type container struct {
	object  bool
	n       int                 // an object's keys so far
	first   string              // an object's first key
	keys    map[string]struct{} // an object's keys, from its second: most have one or none
	wantKey bool                // the next token of an object is a key
}

func newContainer(open json.Delim) container {
	return container{object: open == '{', wantKey: open == '{'}
}

// next takes the token after the previous one, other than a close: in an
// object, a key and the start of its value take turns.
func (c *container) next(tok json.Token) error {
	if !c.object {
		return nil
	}
	if c.wantKey {
		key, _ := tok.(string) // the decoder accepts nothing else as a key
		if err := c.add(key); err != nil {
			return err
		}
	}
	c.wantKey = !c.wantKey
	return nil
}

// add records an object's key, refusing one it has seen.
func (c *container) add(key string) error {
	switch {
	case c.n == MaxMembers:
		return fmt.Errorf("an object with more than %d members", MaxMembers)
	case c.n == 0:
		c.first = key
	case c.keys == nil:
		c.keys = map[string]struct{}{c.first: {}}
		fallthrough
	default:
		if _, dup := c.keys[key]; dup {
			return fmt.Errorf("duplicate key %s", quoteShort(key))
		}
		c.keys[key] = struct{}{}
	}
	c.n++
	return nil
}

func kindName(open json.Delim) string {
	if open == '{' {
		return "object"
	}
	return "array"
}

// kindOf names the kind of the JSON value that starts data, "" for none.
func kindOf(data []byte) string {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return ""
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
