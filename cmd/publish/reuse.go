package main

import (
	"fmt"
	"strings"

	"github.com/chat-offboard/chat-offboard/request"
)

// reuseError is the error of an input line whose request id an earlier line
// already gave (issue 20: a request id means one request). It says what
// the function would do with it: answer a repeat of the same request from
// its ledger, and a different request id_reused, doing nothing; either way
// the two results could not be told apart.
func reuseError(it, first *item) error {
	msg := fmt.Sprintf("requestId %q is already used on line %d", request.Clip(it.req.RequestID), first.line)
	a, aerr := request.Parse(first.data, "")
	b, berr := request.Parse(it.data, "")
	if aerr != nil || berr != nil {
		return fmt.Errorf("%s", msg)
	}
	if d := request.Differences(a.Fingerprint(), b.Fingerprint()); len(d) > 0 {
		return fmt.Errorf("%s, for a different request (%s): the function would answer this one id_reused and do nothing; give each departure its own requestId, with its date (docs/integrators.md)", msg, strings.Join(d, "; "))
	}
	return fmt.Errorf("%s, for the same request: publish it once", msg)
}
