package engine

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/cloudevents/sdk-go/v2/event"
)

// hostileCase is one message that must end invalid, with reason in the
// result's error, and no Chat API call. data is the message data unless
// rawEvent is set, which then is the whole CloudEvent data (the push body).
type hostileCase struct {
	name, data, reason string
	attrs              map[string]string
	rawEvent           string
	eventType          string
}

func hostileCases() []hostileCase {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	nested := strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500)
	c := []hostileCase{
		// Truncated, empty and not JSON.
		{name: "empty", data: "", reason: "empty message data"},
		{name: "whitespace only", data: "  \n\t ", reason: "not valid JSON"},
		{name: "lone brace", data: "{", reason: "not valid JSON"},
		{name: "truncated after value", data: `{"space":"spaces/ENG","member":"users/101"`, reason: "not valid JSON"},
		{name: "truncated in string", data: `{"space":"spaces/ENG","member":"users/1`, reason: "not valid JSON"},
		{name: "truncated after colon", data: `{"space":`, reason: "not valid JSON"},
		{name: "truncated escape", data: `{"space":"spaces/ENG","member":"\u00`, reason: "not valid JSON"},
		{name: "not json", data: `space=spaces/ENG&member=users/101`, reason: "not valid JSON"},
		{name: "single quotes", data: `{'space':'spaces/ENG','member':'users/101'}`, reason: "not valid JSON"},
		{name: "trailing comma", data: `{"space":"spaces/ENG","member":"users/101",}`, reason: "not valid JSON"},
		{name: "comment", data: `{"space":"spaces/ENG", /* hi */ "member":"users/101"}`, reason: "not valid JSON"},
		{name: "trailing object", data: `{"space":"spaces/ENG","member":"users/101"}{"member":"users/102"}`, reason: "after the JSON object"},
		{name: "trailing garbage", data: `{"space":"spaces/ENG","member":"users/101"}x`, reason: "after the JSON object"},
		{name: "top-level array", data: `[{"space":"spaces/ENG","member":"users/101"}]`, reason: "must be a JSON object"},
		{name: "top-level string", data: `"spaces/ENG/members/101"`, reason: "must be a JSON object"},
		{name: "top-level null", data: `null`, reason: "must be a JSON object"},
		// Not UTF-8.
		{name: "invalid byte", data: "{\"space\":\"spaces/ENG\",\"member\":\"users/10\xff\"}", reason: "not valid UTF-8"},
		{name: "overlong slash", data: "{\"space\":\"spaces/ENG\",\"member\":\"x\xc0\xafy\"}", reason: "not valid UTF-8"},
		{name: "latin-1 email", data: "{\"space\":\"spaces/ENG\",\"member\":\"j\xf6rg@example.com\"}", reason: "not valid UTF-8"},
		{name: "UTF-16", data: "\xff\xfe{\x00\"\x00", reason: "not valid UTF-8"},
		{name: "byte order mark", data: "\xef\xbb\xbf{\"space\":\"spaces/ENG\",\"member\":\"users/101\"}", reason: "not valid JSON"},
		{name: "lone surrogate escape", data: `{"space":"spaces/ENG","member":"\ud800101"}`, reason: "non-ASCII"},
		// Duplicate and case-folded keys: encoding/json would let the last one win.
		{name: "duplicate member", data: `{"space":"spaces/ENG","member":"users/102","member":"users/101"}`, reason: "duplicate field"},
		{name: "duplicate by escape", data: `{"space":"spaces/ENG","member":"users/102","\u006dember":"users/101"}`, reason: "duplicate field"},
		{name: "duplicate dryRun", data: `{"space":"spaces/ENG","member":"users/101","dryRun":true,"dryRun":false}`, reason: "duplicate field"},
		{name: "case-folded dryRun", data: `{"space":"spaces/ENG","member":"users/101","dryRun":true,"dryrun":false}`, reason: "unknown field"},
		{name: "case-folded member", data: `{"space":"spaces/ENG","member":"users/102","MEMBER":"users/101"}`, reason: "unknown field"},
		{name: "capitalised keys", data: `{"Space":"spaces/ENG","Member":"users/101"}`, reason: "unknown field"},
		{name: "unicode-folded key", data: `{"ſpace":"spaces/ENG","member":"users/101"}`, reason: "unknown field"},
		{name: "unknown field", data: `{"space":"spaces/ENG","member":"users/101","priority":"high"}`, reason: "unknown field"},
		{name: "attributes in data", data: `{"space":"spaces/ENG","member":"users/101","attributes":{"x":"y"}}`, reason: "unknown field"},
		// Huge.
		{name: "huge payload", data: `{"space":"spaces/ENG","member":"users/101","reason":"` + strings.Repeat("x", 70000) + `"}`, reason: "more than the limit of 65536"},
		{name: "huge reason", data: `{"space":"spaces/ENG","member":"users/101","reason":"` + strings.Repeat("x", 600) + `"}`, reason: "reason: 600 bytes, more than the limit"},
		{name: "huge requestId", data: `{"requestId":"` + strings.Repeat("r", 513) + `","space":"spaces/ENG","member":"users/101"}`, reason: "requestId: 513 bytes"},
		{name: "huge member", data: `{"space":"spaces/ENG","member":"` + strings.Repeat("1", 300) + `"}`, reason: "too long"},
		{name: "huge space", data: `{"space":"spaces/` + strings.Repeat("E", 300) + `","member":"users/101"}`, reason: "too long"},
		{name: "huge number", data: `{"space":"spaces/ENG","member":1` + strings.Repeat("0", 5000) + `}`, reason: "wrong type"},
		// Deep nesting.
		{name: "deep arrays", data: `{"space":"spaces/ENG","member":` + deep + `}`, reason: "not valid JSON"},
		{name: "deep array member", data: `{"space":"spaces/ENG","member":[[[[[[[[[["users/101"]]]]]]]]]]}`, reason: "wrong type"},
		{name: "nested objects", data: `{"space":"spaces/ENG","member":"users/101","x":` + nested + `}`, reason: "unknown field"},
		// Wrong types.
		{name: "member number", data: `{"space":"spaces/ENG","member":101}`, reason: "wrong type: got JSON number, want a string"},
		{name: "member array", data: `{"space":"spaces/ENG","member":["users/101"]}`, reason: "wrong type"},
		{name: "member object", data: `{"space":"spaces/ENG","member":{"name":"users/101"}}`, reason: "wrong type"},
		{name: "member bool", data: `{"space":"spaces/ENG","member":true}`, reason: "wrong type"},
		{name: "dryRun string", data: `{"space":"spaces/ENG","member":"users/101","dryRun":"true"}`, reason: "want true or false"},
		{name: "dryRun number", data: `{"space":"spaces/ENG","member":"users/101","dryRun":0}`, reason: "want true or false"},
		{name: "adminAccess null-ish string", data: `{"space":"spaces/ENG","member":"users/101","adminAccess":"null"}`, reason: "want true or false"},
		{name: "spaces string", data: `{"spaces":"spaces/ENG","member":"users/101"}`, reason: "want an array of strings"},
		{name: "members of numbers", data: `{"allSpaces":true,"members":[101,102]}`, reason: "wrong type"},
		{name: "allSpaces string", data: `{"allSpaces":"yes","member":"users/101"}`, reason: "want true or false"},
		{name: "null space", data: `{"space":null,"member":"users/101"}`, reason: "no target"},
		// Path tricks: '/', '..', percent-encoding, '?', '#'.
		{name: "member climbs out", data: `{"space":"spaces/ENG","member":"x/../../spaces/HR/members/102"}`, reason: "must be users/ID, users/EMAIL, EMAIL, ID or app"},
		{name: "users prefix climbs", data: `{"space":"spaces/ENG","member":"users/../../spaces/HR/members/102"}`, reason: "must be users/ID"},
		{name: "member dotdot", data: `{"space":"spaces/ENG","member":".."}`, reason: "'..' is not allowed"},
		{name: "email dotdot", data: `{"space":"spaces/ENG","member":"alice..x@example.com"}`, reason: "'..' is not allowed"},
		{name: "membership dotdot member", data: `{"membership":"spaces/ENG/members/.."}`, reason: "'..' is not allowed"},
		{name: "membership dot space", data: `{"membership":"spaces/./members/101"}`, reason: "character '.' is not allowed"},
		{name: "space climbs", data: `{"space":"spaces/ENG/../HR","member":"users/101"}`, reason: "must be exactly spaces/{space}"},
		{name: "membership extra segment", data: `{"membership":"spaces/ENG/members/101/../../HR/members/102"}`, reason: "must be exactly spaces/{space}/members/{member}"},
		{name: "membership trailing slash", data: `{"membership":"spaces/ENG/members/101/"}`, reason: "must be exactly spaces/{space}/members/{member}"},
		{name: "membership empty space", data: `{"membership":"spaces//members/101"}`, reason: "empty name segment"},
		{name: "membership other collection", data: `{"membership":"spaces/ENG/messages/101"}`, reason: "must be exactly"},
		{name: "percent dotdot", data: `{"space":"spaces/ENG","member":"%2e%2e"}`, reason: "percent-encoding is not allowed"},
		{name: "percent slash", data: `{"space":"spaces/ENG","member":"101%2F..%2F102"}`, reason: "percent-encoding is not allowed"},
		{name: "percent in space", data: `{"space":"spaces/EN%47","member":"users/101"}`, reason: "percent-encoding is not allowed"},
		{name: "double percent", data: `{"membership":"spaces/ENG/members/%252e%252e"}`, reason: "percent-encoding is not allowed"},
		{name: "query in member", data: `{"space":"spaces/ENG","member":"101?useAdminAccess=true"}`, reason: "'?' and '#' are not allowed"},
		{name: "query in space", data: `{"space":"spaces/ENG?alt=media","member":"users/101"}`, reason: "'?' and '#' are not allowed"},
		{name: "fragment in member", data: `{"space":"spaces/ENG","member":"101#"}`, reason: "'?' and '#' are not allowed"},
		{name: "fragment in membership", data: `{"membership":"spaces/ENG/members/101#x"}`, reason: "'?' and '#' are not allowed"},
		{name: "backslash", data: `{"space":"spaces/ENG","member":"101\\..\\102"}`, reason: "is not allowed in a name"},
		{name: "semicolon", data: `{"space":"spaces/ENG","member":"101;102"}`, reason: "is not allowed in a name"},
		// Unicode look-alikes and invisible characters.
		{name: "cyrillic a", data: `{"space":"spaces/ENG","member":"\u0430lice@example.com"}`, reason: "non-ASCII"},
		{name: "greek omicron space", data: `{"space":"spaces/\u039fPS","member":"users/101"}`, reason: "non-ASCII"},
		{name: "zero-width space", data: `{"space":"spaces/ENG","member":"alice\u200b@example.com"}`, reason: "non-ASCII"},
		{name: "zero-width joiner", data: `{"space":"spaces/ENG","member":"users/10\u200d1"}`, reason: "non-ASCII"},
		{name: "fullwidth digits", data: `{"space":"spaces/ENG","member":"users/\uff11\uff10\uff11"}`, reason: "non-ASCII"},
		{name: "fullwidth solidus", data: `{"space":"spaces/ENG","member":"x\uff0f..\uff0fHR"}`, reason: "non-ASCII"},
		{name: "division slash", data: `{"membership":"spaces/ENG/members/101\u2215..\u2215102"}`, reason: "non-ASCII"},
		{name: "right-to-left override", data: `{"space":"spaces/ENG","member":"\u202e101"}`, reason: "non-ASCII"},
		{name: "soft hyphen", data: `{"space":"spaces/ENG","member":"alice\u00ad@example.com"}`, reason: "non-ASCII"},
		{name: "no-break space", data: `{"space":"spaces/ENG","member":"alice\u00a0@example.com"}`, reason: "non-ASCII"},
		{name: "combining accent", data: `{"space":"spaces/ENG","member":"alice\u0301@example.com"}`, reason: "non-ASCII"},
		{name: "BOM in name", data: `{"space":"spaces/ENG","member":"\ufeff101"}`, reason: "non-ASCII"},
		{name: "fullwidth at", data: `{"space":"spaces/ENG","member":"alice\uff20example.com"}`, reason: "non-ASCII"},
		// Spaces and control characters.
		{name: "trailing space", data: `{"space":"spaces/ENG","member":"users/101 "}`, reason: "spaces are not allowed"},
		{name: "tab", data: `{"space":"spaces/ENG","member":"\t101"}`, reason: "control character"},
		{name: "NUL", data: `{"space":"spaces/ENG","member":"101\u0000"}`, reason: "control character"},
		{name: "header injection", data: `{"space":"spaces/ENG","member":"101\r\nX-Injected: 1"}`, reason: "control character"},
		{name: "DEL", data: `{"space":"spaces/ENG","member":"101\u007f"}`, reason: "control character"},
		{name: "control in requestId", data: `{"requestId":"hr\n1","space":"spaces/ENG","member":"users/101"}`, reason: "requestId: control character"},
		// Schema.
		{name: "no target", data: `{"member":"users/101"}`, reason: "no target"},
		{name: "two targets", data: `{"membership":"spaces/ENG/members/101","space":"spaces/ENG","member":"users/101"}`, reason: "more than one target form"},
		{name: "missing member", data: `{"space":"spaces/ENG"}`, reason: "member: missing"},
		{name: "membership with member", data: `{"membership":"spaces/ENG/members/101","member":"users/102"}`, reason: "not allowed with membership"},
		{name: "users/app", data: `{"space":"spaces/ENG","member":"users/app"}`, reason: "not users/app"},
		{name: "app with admin access", data: `{"space":"spaces/ENG","member":"app","adminAccess":true}`, reason: "admin access cannot remove an app membership"},
		{name: "email without domain", data: `{"space":"spaces/ENG","member":"alice@"}`, reason: "not a valid email"},
		{name: "email without local part", data: `{"space":"spaces/ENG","member":"@example.com"}`, reason: "not a valid email"},
		{name: "two at signs", data: `{"space":"spaces/ENG","member":"alice@evil.com@example.com"}`, reason: "not a valid email"},
		{name: "id with dot", data: `{"space":"spaces/ENG","member":"101.5"}`, reason: "an id has only letters"},
		{name: "addSuccessor alone", data: `{"space":"spaces/ENG","member":"users/101","addSuccessor":true}`, reason: "needs successor"},
		{name: "pageToken outside a sweep", data: `{"space":"spaces/ENG","member":"users/101","pageToken":"p2"}`, reason: "only a sweep"},
		// Attributes that try to override the request: only the data counts.
		{name: "attributes add the member", data: `{"space":"spaces/ENG"}`, reason: "member: missing",
			attrs: map[string]string{"member": "users/101", "membership": "spaces/ENG/members/101"}},
		{name: "attributes add the target", data: `{"member":"users/101"}`, reason: "no target",
			attrs: map[string]string{"space": "spaces/ENG", "membership": "spaces/ENG/members/101", "ce-subject": "spaces/ENG/members/101"}},
		{name: "attributes replace a bad member", data: `{"space":"spaces/ENG","member":"x/../101"}`, reason: "must be users/ID",
			attrs: map[string]string{"member": "users/101", "data": `{"space":"spaces/ENG","member":"users/101"}`}},
		{name: "attributes fix the type", data: `{"space":"spaces/ENG","member":"users/101","dryRun":"no"}`, reason: "want true or false",
			attrs: map[string]string{"dryRun": "false", "content-type": "application/json"}},
		// The event itself.
		{name: "event data not JSON", rawEvent: `hello`, reason: "not a Pub/Sub message"},
		{name: "event without message", rawEvent: `{"subscription":"s"}`, reason: `has no "message"`},
		{name: "message data not base64", rawEvent: `{"message":{"data":"{\"space\":\"spaces/ENG\"}","messageId":"1"}}`, reason: "not a Pub/Sub message"},
		{name: "message without data", rawEvent: `{"message":{"messageId":"1","attributes":{"member":"users/101","space":"spaces/ENG"}}}`, reason: "empty message data"},
		{name: "publishTime not RFC 3339", rawEvent: `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(`{"space":"spaces/ENG","member":"users/101"}`)) + `","publishTime":"yesterday"}}`, reason: "not RFC 3339"},
		{name: "other event type", rawEvent: `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(`{"space":"spaces/ENG","member":"users/101"}`)) + `"}}`, eventType: "google.cloud.storage.object.v1.finalized", reason: "is not " + contract.PublishedEventType},
	}
	return c
}

// TestHostileInput sends every hostile case through Handle: each ends
// invalid, with its reason in the result, Handle returns nil (invalid is
// permanent), and nothing reaches the Chat API.
func TestHostileInput(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	e := newEnv(t)
	before := e.stack.Chat.Snapshot()
	for i, c := range cases {
		var ev event.Event
		if c.rawEvent != "" || c.attrs != nil || c.eventType != "" {
			ev = hostileEvent(c)
		} else {
			ev = pubsubEvent(c.data, time.Now())
		}
		if err := e.f.Handle(context.Background(), ev); err != nil {
			t.Errorf("%s: Handle returned %v, want nil (invalid is permanent)", c.name, err)
			continue
		}
		rs := e.results(t)
		if len(rs) != i+1 {
			t.Fatalf("%s: %d results after %d cases", c.name, len(rs), i+1)
		}
		r := rs[i]
		if r.Outcome != contract.Invalid || r.Error == nil {
			t.Errorf("%s: outcome %q (%+v), want invalid", c.name, r.Outcome, r.Result)
			continue
		}
		if !strings.Contains(r.Error.Message, c.reason) {
			t.Errorf("%s: reason %q does not say %q", c.name, r.Error.Message, c.reason)
		}
		if r.Membership != "" {
			t.Errorf("%s: invalid result names membership %q", c.name, r.Membership)
		}
		if r.Attrs["outcome"] != string(contract.Invalid) || r.Attrs["ce-id"] != contract.EventID(r.RequestID, r.Membership, contract.Invalid) {
			t.Errorf("%s: attributes %v", c.name, r.Attrs)
		}
		if r.RequestID == "override" || len(r.Error.Message) > 1024 {
			t.Errorf("%s: request id %q, reason of %d bytes", c.name, r.RequestID, len(r.Error.Message))
		}
		if n := e.chatCalls(); n != 0 {
			t.Fatalf("%s: %d Chat API calls", c.name, n)
		}
	}
	after := e.stack.Chat.Snapshot()
	if len(before.Spaces) != len(after.Spaces) {
		t.Fatal("spaces changed")
	}
	for i := range before.Spaces {
		if len(before.Spaces[i].Members) != len(after.Spaces[i].Members) {
			t.Errorf("%s changed", before.Spaces[i].Name)
		}
	}
	t.Logf("%d hostile cases, all invalid, %d Chat API calls", len(cases), e.chatCalls())
}

// hostileEvent builds a messagePublished CloudEvent with the case's
// attributes, event type or raw push body.
func hostileEvent(c hostileCase) event.Event {
	e := pubsubEvent(c.data, time.Now())
	if c.eventType != "" {
		e.SetType(c.eventType)
	}
	if c.rawEvent != "" {
		e.DataEncoded = []byte(c.rawEvent)
		return e
	}
	attrs := map[string]string{"requestId": "override"}
	for k, v := range c.attrs {
		attrs[k] = v
	}
	_ = e.SetData("application/json", map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString([]byte(c.data)),
			"attributes":  attrs,
			"messageId":   e.ID(),
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
	})
	return e
}
