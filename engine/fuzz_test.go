package engine

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

var fuzzNameRE = regexp.MustCompile(`^spaces/[^/]+(/members/[^/]+)?$`)

// FuzzDecodeEvent runs what Handle does before any network call, on
// arbitrary CloudEvent data: DecodeEvent, request.Parse and the encoding of
// the result event. Nothing may panic; a rejection by the validator is a
// *request.Error with a reason; an accepted request yields only well-formed
// names; the result event (invalid or not) always encodes.
func FuzzDecodeEvent(f *testing.F) {
	seeds := []struct{ typ, id, data string }{
		{contract.PublishedEventType, "m-1", `{"message":{"data":"eyJzcGFjZSI6InNwYWNlcy9FTkciLCJtZW1iZXIiOiJ1c2Vycy8xMDIifQ==","messageId":"1","publishTime":"2026-11-28T10:00:00Z"},"subscription":"projects/p/subscriptions/s"}`},
		{contract.PublishedEventType, "m-2", `{"message":{"data":"eyJtZW1iZXJzaGlwIjoic3BhY2VzL0EvbWVtYmVycy94Ly4uLy4uL3NwYWNlcy9CL21lbWJlcnMveSJ9","message_id":"2","publish_time":"2026-11-28T10:00:00.123456789+01:00","attributes":{"member":"users/1"}}}`},
		{"", "m-3", `{"message":{"data":"e30=","attributes":{"requestId":"x","space":"spaces/A"}}}`},
		{"com.example.other", "m-4", `{"message":{}}`},
		{contract.PublishedEventType, "m-5", `{"message":{"data":"not base64!"}}`},
		{contract.PublishedEventType, "m-6", `{"message":{"data":"e30=","publishTime":"yesterday"}}`},
		{contract.PublishedEventType, "m-7", `{"message":null}`},
		{contract.PublishedEventType, "m-8", `{}`},
		{contract.PublishedEventType, "", "{\"message\":{\"data\":\"/w==\"}}"},
		{contract.PublishedEventType, "m-9", `[[[[[[[[[[]]]]]]]]]]`},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.id, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, typ, id string, data []byte) {
		e := event.New()
		e.SetID(id)
		if typ != "" {
			e.SetType(typ)
		}
		e.DataEncoded = data
		m, err := DecodeEvent(e)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty decode error")
			}
			checkResultEncodes(t, &contract.Result{RequestID: e.ID(), Outcome: contract.Invalid, Error: &contract.ErrorInfo{Code: 400, Message: err.Error()}})
			return
		}
		v, err := request.Parse(m.Data, m.ID)
		if err != nil {
			var re *request.Error
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("rejection %T %v is not a *request.Error with a reason", err, err)
			}
			if !utf8.ValidString(err.Error()) || len(err.Error()) > 1024 {
				t.Fatalf("rejection is not short, valid UTF-8: %.200q", err.Error())
			}
			rid := looseRequestID(m.Data, m.ID)
			if len(rid) > 512 {
				t.Fatalf("request id of %d bytes taken from a rejected request", len(rid))
			}
			checkResultEncodes(t, &contract.Result{RequestID: rid, SourceMessageID: m.ID, Outcome: contract.Invalid, Error: &contract.ErrorInfo{Code: 400, Message: err.Error()}})
			return
		}
		// The attributes never override the request: the target comes from
		// the data alone.
		again, err := request.Parse(m.Data, m.ID)
		if err != nil {
			t.Fatalf("parse is not deterministic: accepted, then %v", err)
		}
		if diff := cmp.Diff(v, again); diff != "" {
			t.Fatalf("parse is not deterministic (-first +second):\n%s", diff)
		}
		names := append([]string(nil), v.SpaceNames...)
		if v.Name != "" {
			names = append(names, v.Name)
		}
		for _, s := range v.SpaceNames {
			for _, p := range v.People {
				names = append(names, s+"/members/"+p)
			}
		}
		for _, n := range names {
			if !fuzzNameRE.MatchString(n) || strings.Contains(n, "..") || strings.ContainsAny(n, "%?#") {
				t.Fatalf("accepted name %q is not well-formed", n)
			}
			for i := 0; i < len(n); i++ {
				if n[i] <= 0x20 || n[i] >= 0x7f {
					t.Fatalf("accepted name %q holds byte %#x", n, n[i])
				}
			}
		}
		checkResultEncodes(t, &contract.Result{RequestID: v.RequestID, Membership: v.Name, Outcome: contract.Removed, SourceMessageID: m.ID})
	})
}

func checkResultEncodes(t *testing.T, r *contract.Result) {
	t.Helper()
	msg, err := resultMessage(r)
	if err != nil {
		t.Fatalf("result does not encode: %v", err)
	}
	var back contract.Result
	if err := json.Unmarshal(msg.Data, &back); err != nil {
		t.Fatalf("result data is not JSON: %v", err)
	}
	if msg.Attributes["ce-id"] != r.EventID() || msg.Attributes["outcome"] != string(r.Outcome) {
		t.Fatalf("result attributes: %v", msg.Attributes)
	}
}
