// The operator forms (issue 23): a due tick, which runs the held requests
// whose grace period is over, and the approvals, rejections and cancels
// that operators publish to APPROVAL_TOPIC.

package request

import "reflect"

// Held is the value of approve or reject that names every request held at
// that moment.
const Held = "held"

// OperatorForms are the JSON fields of the operator forms.
var OperatorForms = []string{"due", "approve", "reject", "cancel"}

// isOperator reports whether r is in one of the operator forms.
func isOperator(r Request) bool {
	return r.Due || r.Approve != "" || r.Reject != "" || r.Cancel != ""
}

// operatorKind names an operator form.
func operatorKind(k Kind) string {
	switch k {
	case KindDue:
		return "due"
	case KindApprove:
		return "approve"
	case KindReject:
		return "reject"
	}
	return "cancel"
}

// IsOperator reports whether a valid request is a due tick, an approval, a
// rejection or a cancel.
func (v *Valid) IsOperator() bool {
	return v.Kind == KindDue || v.Kind == KindApprove || v.Kind == KindReject || v.Kind == KindCancel
}

// Target is the request an approval, rejection or cancel names (or Held).
func (v *Valid) Target() string {
	return v.Approve + v.Reject + v.Cancel
}

// validateOperator checks an operator form: exactly one of due, approve,
// reject and cancel, beside requestId, reason and requestedBy only.
func validateOperator(r Request) (*Valid, error) {
	for _, f := range []struct{ name, v string }{
		{"requestId", r.RequestID}, {"reason", r.Reason}, {"requestedBy", r.RequestedBy},
		{"approve", r.Approve}, {"reject", r.Reject}, {"cancel", r.Cancel},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if r.RequestID == "" {
		return nil, invalid("requestId", "missing")
	}
	forms, kind, field := 0, Kind(0), ""
	for _, f := range []struct {
		set   bool
		kind  Kind
		field string
	}{{r.Due, KindDue, "due"}, {r.Approve != "", KindApprove, "approve"}, {r.Reject != "", KindReject, "reject"}, {r.Cancel != "", KindCancel, "cancel"}} {
		if f.set {
			forms, kind, field = forms+1, f.kind, f.field
		}
	}
	if forms > 1 {
		return nil, invalid("", "give one of due, approve, reject and cancel")
	}
	rest := r
	rest.RequestID, rest.Reason, rest.RequestedBy = "", "", ""
	rest.Due, rest.Approve, rest.Reject, rest.Cancel = false, "", "", ""
	if !reflect.DeepEqual(rest, Request{}) {
		return nil, invalid(field, "takes only requestId, reason and requestedBy beside it")
	}
	switch {
	case r.Cancel == Held:
		return nil, invalid("cancel", "names one request; \"held\" is for approve and reject")
	case r.Approve == r.RequestID || r.Reject == r.RequestID || r.Cancel == r.RequestID:
		return nil, invalid(field, "a request cannot name itself")
	}
	return &Valid{Request: r, Kind: kind}, nil
}
