// Exact keys in a LogEntry: encoding/json matches an object's keys to
// struct fields case-insensitively (with Unicode folding: "ſerviceName" is
// serviceName) and lets the last of two equal keys win, so a LogEntry that
// another reader takes one way could reach the function another way.

package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// maxEntryDepth bounds the nesting of a LogEntry's JSON (an Admin audit
// entry nests 6 deep).
const maxEntryDepth = 32

// checkEntryKeys refuses a LogEntry in which any object repeats a key, or
// spells a key of a field that logEntry reads other than exactly (a key
// that is equal to one of its fields only when case is folded). Keys of
// fields it does not read are otherwise free: a LogEntry has many.
func checkEntryKeys(data []byte) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkKeys(dec, reflect.TypeFor[logEntry](), "", 0); err != nil {
		return err
	}
	return nil
}

// checkKeys walks the next JSON value of dec, which decodes into a value of
// type t (nil when nothing reads it), at path.
func checkKeys(dec *json.Decoder, t reflect.Type, path string, depth int) *Error {
	if depth > maxEntryDepth {
		return invalid(path, "nested more than %d deep", maxEntryDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return keyJSONError(err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		if err := checkObject(dec, jsonFields(t), path, depth); err != nil {
			return err
		}
	default:
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing ] or }
		return keyJSONError(err)
	}
	return nil
}

// checkObject walks the members of an object whose fields (exact JSON name
// to type) are fields.
func checkObject(dec *json.Decoder, fields map[string]reflect.Type, path string, depth int) *Error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keyJSONError(err)
		}
		key, _ := tok.(string)
		at := Clip(strings.TrimPrefix(path+"."+key, "."))
		if seen[key] {
			return invalid(at, "duplicate key")
		}
		seen[key] = true
		ft, exact := fields[key]
		if !exact {
			for name := range fields {
				if strings.EqualFold(name, key) {
					return invalid(at, "the LogEntry field is spelled %s (keys are matched exactly)", name)
				}
			}
		}
		if err := checkKeys(dec, ft, at, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// jsonFields maps the JSON names of struct type t's fields to their types;
// nil when t is not a struct.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			m[name] = f.Type
		}
	}
	return m
}

// keyJSONError is jsonError for a LogEntry.
func keyJSONError(err error) *Error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	je := jsonError(err)
	je.Reason = "LogEntry: " + je.Reason
	return je
}
