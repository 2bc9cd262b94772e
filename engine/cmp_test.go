package engine

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chat-offboard/chat-offboard/contract"
)

// resultDiff compares a published result with want as a whole value and
// returns the difference (-want +got), or "" when they agree. ProcessedAt
// and SourceMessageID differ from run to run and are left out; ignore names
// further fields of contract.Result to leave out, and opts adds options
// (such as ignoreErrorMessage).
func resultDiff(want, got contract.Result, ignore []string, opts ...cmp.Option) string {
	fields := append([]string{"ProcessedAt", "SourceMessageID"}, ignore...)
	opts = append(opts, cmpopts.IgnoreFields(contract.Result{}, fields...))
	return cmp.Diff(want, got, opts...)
}

// ignoreErrorMessage leaves out the text of an ErrorInfo (checked on its
// own where it matters), keeping its code and status.
var ignoreErrorMessage = cmpopts.IgnoreFields(contract.ErrorInfo{}, "Message")

// ptr returns a pointer to v, for the optional fields of a Result.
func ptr[T any](v T) *T { return &v }
