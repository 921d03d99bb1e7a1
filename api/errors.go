package api

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Error is a configuration error at one place of a document.
type Error struct {
	// Path locates the offending value with proto field names, list
	// indexes and map keys, as in route_config.routes[0].match. It is empty
	// for the document itself.
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error formats e as "<msg> at <path>".
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Msg + " at " + e.Path
}

// errorf returns an *Error at path.
func errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// under moves err below prefix: an *Error gets prefix prepended to its path,
// anything else becomes an *Error at prefix.
func under(prefix string, err error) error {
	if err == nil || prefix == "" {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Path: join(prefix, e.Path), Msg: e.Msg}
	}
	return &Error{Path: prefix, Msg: err.Error()}
}

// join appends the relative path rel to base.
func join(base, rel string) string {
	switch {
	case base == "":
		return rel
	case rel == "":
		return base
	case rel[0] == '[':
		return base + rel
	}
	return base + "." + rel
}

// field is the path of field name below p.
func field(p string, name protoreflect.Name) string { return join(p, string(name)) }

// index is the path of list element i of p.
func index(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

// key is the path of map entry k of p.
func key(p, k string) string { return p + "[" + strconv.Quote(k) + "]" }
