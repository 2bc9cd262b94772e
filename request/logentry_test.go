package request

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// sinkEntry is an Admin audit LogEntry as an organization sink publishes it,
// shaped like Google's samples: parameters in the order Google sends them
// (type and label before the name, USER_EMAIL not first).
const sinkEntry = `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",
 "authenticationInfo":{"principalEmail":"admin@example.com"},
 "requestMetadata":{"callerIp":"127.0.0.1","requestAttributes":{},"destinationAttributes":{}},
 "serviceName":"admin.googleapis.com","methodName":"google.admin.AdminService.suspendUser",
 "resourceName":"organizations/506102632746/userSettings",
 "metadata":{"@type":"type.googleapis.com/ccc_hosted_reporting.ActivityProto",
  "activityId":{"timeUsec":"1663476083593000","uniqQualifier":"-8299540676987354861"},
  "event":[{"parameter":[{"type":"TYPE_STRING","name":"SUSPENSION_REASON","label":"LABEL_OPTIONAL","value":"offboarding"},
   {"type":"TYPE_STRING","label":"LABEL_OPTIONAL","value":"Alice@Example.com","name":"USER_EMAIL"}],
   "eventType":"USER_SETTINGS","eventName":"SUSPEND_USER"}]}},
 "insertId":"fjwwoaeb955f",
 "resource":{"type":"audited_resource","labels":{"service":"admin.googleapis.com","method":"google.admin.AdminService.suspendUser"}},
 "timestamp":"2022-09-18T04:41:23.593Z","severity":"NOTICE",
 "logName":"organizations/506102632746/logs/cloudaudit.googleapis.com%2Factivity",
 "receiveTimestamp":"2022-09-18T04:41:24.500756352Z"}`

func TestParseAuditEntrySample(t *testing.T) {
	if !LooksLikeLogEntry([]byte(sinkEntry)) {
		t.Fatal("the sample is not recognised as a LogEntry")
	}
	ev, err := ParseAuditEntry([]byte(sinkEntry))
	if err != nil {
		t.Fatal(err)
	}
	want := AuditEvent{
		InsertID: "fjwwoaeb955f", Organization: "506102632746",
		Method: "google.admin.AdminService.suspendUser", EventName: "SUSPEND_USER",
		Email: "Alice@Example.com", Actor: "admin@example.com",
		Time: time.Date(2022, 9, 18, 4, 41, 23, 593e6, time.UTC), UniqueQualifier: -8299540676987354861, HasActivityID: true,
	}
	if *ev != want {
		t.Fatalf("got  %+v\nwant %+v", *ev, want)
	}
	if got := ev.RequestID(); got != "workspace-1663476083593--8299540676987354861" {
		t.Fatalf("request id %q", got)
	}
	// The Reports API gives the activity's time as RFC 3339 in
	// milliseconds: the same id, also when the entry's time is finer.
	at, _ := time.Parse(time.RFC3339Nano, "2022-09-18T04:41:23.593Z")
	if got := AuditRequestID(at, -8299540676987354861); got != ev.RequestID() {
		t.Fatalf("AuditRequestID from the Reports API's id = %q, from the entry %q", got, ev.RequestID())
	}
	finer, err := ParseAuditEntry([]byte(strings.Replace(sinkEntry, "1663476083593000", "1663476083593417", 1)))
	if err != nil || finer.RequestID() != ev.RequestID() {
		t.Fatalf("an entry timed in microseconds: %v, %q, want %q", err, finer.RequestID(), ev.RequestID())
	}
	// A normal request never parses as this entry, and the entry is not a
	// removal request.
	if _, err := Parse([]byte(sinkEntry), "m1"); err == nil {
		t.Fatal("Parse accepted a LogEntry")
	}
}

// TestAuditEntryRoundTrip: what LogEntry encodes, ParseAuditEntry reads back,
// for every method.
func TestAuditEntryRoundTrip(t *testing.T) {
	for method, name := range AuditMethods {
		ev := AuditEvent{InsertID: "-abc_123", Organization: "42", Method: method, EventName: name,
			Email: "bob@example.com", Actor: "admin@example.com", Time: time.UnixMicro(1700000000123456).UTC(),
			UniqueQualifier: 77, HasActivityID: true}
		got, err := ParseAuditEntry(ev.LogEntry())
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if *got != ev {
			t.Fatalf("%s: got %+v, want %+v", method, *got, ev)
		}
		ev.HasActivityID, ev.Time, ev.UniqueQualifier = false, time.Time{}, 0
		got, err = ParseAuditEntry(ev.LogEntry())
		if err != nil || got.RequestID() != "workspace-entry--abc_123" {
			t.Fatalf("%s without an activity id: %v, %+v", method, err, got)
		}
	}
}

// mutate decodes the sample, applies fn to it and encodes it again.
func mutate(t *testing.T, fn func(e map[string]any)) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal([]byte(sinkEntry), &e); err != nil {
		t.Fatal(err)
	}
	fn(e)
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func payload(e map[string]any) map[string]any { return e["protoPayload"].(map[string]any) }
func metadata(e map[string]any) map[string]any {
	return payload(e)["metadata"].(map[string]any)
}
func event0(e map[string]any) map[string]any {
	return metadata(e)["event"].([]any)[0].(map[string]any)
}

func TestParseAuditEntryRejects(t *testing.T) {
	cases := []struct {
		name, field, reason string
		fn                  func(e map[string]any)
	}{
		{"no insertId", "insertId", "missing", func(e map[string]any) { delete(e, "insertId") }},
		{"insertId with a slash", "insertId", "must be", func(e map[string]any) { e["insertId"] = "a/../b" }},
		{"project log", "logName", "organizations/ORG", func(e map[string]any) {
			e["logName"] = "projects/p/logs/cloudaudit.googleapis.com%2Factivity"
		}},
		{"data access log", "logName", "Admin Activity", func(e map[string]any) {
			e["logName"] = "organizations/1/logs/cloudaudit.googleapis.com%2Fdata_access"
		}},
		{"another service", "protoPayload.serviceName", "admin.googleapis.com", func(e map[string]any) {
			payload(e)["serviceName"] = "login.googleapis.com"
		}},
		{"unsuspend", "protoPayload.methodName", "does not offboard", func(e map[string]any) {
			payload(e)["methodName"] = "google.admin.AdminService.unsuspendUser"
		}},
		{"not an AuditLog", "protoPayload.@type", "AuditLog", func(e map[string]any) { payload(e)["@type"] = "x" }},
		{"no metadata", "protoPayload.metadata", "missing", func(e map[string]any) { delete(payload(e), "metadata") }},
		{"no USER_EMAIL", "protoPayload.metadata.event", "names nobody", func(e map[string]any) {
			event0(e)["parameter"] = []any{map[string]any{"name": "GROUP_EMAIL", "value": "g@example.com"}}
		}},
		{"USER_EMAIL twice", "protoPayload.metadata.event[0].parameter", "2 times", func(e map[string]any) {
			p := event0(e)["parameter"].([]any)
			event0(e)["parameter"] = append(p, map[string]any{"name": "USER_EMAIL", "value": "eve@example.com"})
		}},
		{"USER_EMAIL a path", "protoPayload.metadata.event[0].parameter[USER_EMAIL]", "", func(e map[string]any) {
			event0(e)["parameter"] = []any{map[string]any{"name": "USER_EMAIL", "value": "x/../../spaces/S/members/y@example.com"}}
		}},
		{"USER_EMAIL an id", "protoPayload.metadata.event[0].parameter[USER_EMAIL]", "not an email", func(e map[string]any) {
			event0(e)["parameter"] = []any{map[string]any{"name": "USER_EMAIL", "value": "123456"}}
		}},
		{"two people", "protoPayload.metadata.event", "more than one person", func(e map[string]any) {
			two := map[string]any{"eventName": "SUSPEND_USER", "parameter": []any{map[string]any{"name": "USER_EMAIL", "value": "eve@example.com"}}}
			metadata(e)["event"] = append(metadata(e)["event"].([]any), two)
		}},
		{"timeUsec not a number", "protoPayload.metadata.activityId.timeUsec", "microseconds", func(e map[string]any) {
			metadata(e)["activityId"] = map[string]any{"timeUsec": "soon", "uniqQualifier": "1"}
		}},
		{"uniqQualifier too big", "protoPayload.metadata.activityId.uniqQualifier", "64-bit", func(e map[string]any) {
			metadata(e)["activityId"] = map[string]any{"timeUsec": "1", "uniqQualifier": "99999999999999999999"}
		}},
		{"wrong type", "protoPayload.methodName", "wrong type", func(e map[string]any) { payload(e)["methodName"] = 7 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAuditEntry(mutate(t, c.fn))
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *request.Error", err)
			}
			if re.Field != c.field || !strings.Contains(re.Reason, c.reason) {
				t.Fatalf("got field %q reason %q, want field %q and a reason with %q", re.Field, re.Reason, c.field, c.reason)
			}
		})
	}
	for _, bad := range []string{"", "{", `{"insertId":"a"} x`, "\xff", "[]"} {
		if _, err := ParseAuditEntry([]byte(bad)); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

// TestAuditEntriesByMethod: an entry is recognised by the method names of
// Google's audit catalogue, all six user suspensions and removals, and its
// person is taken from USER_EMAIL whatever the event is called (Google does
// not publish the event name each method logs).
func TestAuditEntriesByMethod(t *testing.T) {
	// The "Google Workspace Admin" methods of AUDIT_CATALOG.md
	// (googleapis/google-cloudevents) that suspend, archive or delete a user.
	catalogue := []string{"archiveUser", "deleteAutoProvisionedUser", "deleteUser", "hardDeletedAutoProvisionedUser",
		"suspendAutoProvisionedUser", "suspendUser"}
	if len(AuditMethods) != len(catalogue) {
		t.Errorf("AuditMethods has %d methods, the catalogue %d", len(AuditMethods), len(catalogue))
	}
	for _, m := range catalogue {
		method := "google.admin.AdminService." + m
		if _, ok := AuditMethods[method]; !ok {
			t.Errorf("%s is not recognised", method)
		}
		for _, name := range []string{"SUSPEND_USER", "SOME_NAME_GOOGLE_CHOSE", "", "not a name!"} {
			data := mutate(t, func(e map[string]any) {
				payload(e)["methodName"] = method
				event0(e)["eventName"] = name
			})
			ev, err := ParseAuditEntry(data)
			if err != nil {
				t.Fatalf("%s with event %q: %v", m, name, err)
			}
			wantName := name
			if name == "not a name!" {
				wantName = ""
			}
			if ev.Method != method || ev.Email != "Alice@Example.com" || ev.EventName != wantName {
				t.Errorf("%s with event %q: %+v", m, name, ev)
			}
			what := wantName
			if what == "" {
				what = m
			}
			if ev.What() != what {
				t.Errorf("%s with event %q: What() = %q, want %q", m, name, ev.What(), what)
			}
		}
	}
	// The person may be named by a later event than the first.
	ev, err := ParseAuditEntry(mutate(t, func(e map[string]any) {
		other := map[string]any{"eventName": "CHANGE_USER_ORGANIZATION", "parameter": []any{map[string]any{"name": "ORG_UNIT_NAME", "value": "/x"}}}
		metadata(e)["event"] = append([]any{other}, metadata(e)["event"].([]any)...)
	}))
	if err != nil || ev.Email != "Alice@Example.com" || ev.EventName != "SUSPEND_USER" {
		t.Fatalf("person in the second event: %+v, %v", ev, err)
	}
	// Every event name has an entry in AuditEventSources, and only those.
	for _, name := range AuditMethods {
		if _, ok := AuditEventSources[name]; !ok {
			t.Errorf("%s has no entry in AuditEventSources", name)
		}
	}
	if len(AuditEventSources) != len(AuditMethods) {
		t.Errorf("AuditEventSources has %d names, AuditMethods %d", len(AuditEventSources), len(AuditMethods))
	}
}

func TestLooksLikeLogEntry(t *testing.T) {
	for data, want := range map[string]bool{
		`{"logName":"x","protoPayload":{}}`:          true,
		`{"requestId":"r","member":"a@example.com"}`: false,
		`{"logName":"x"}`:                            false,
		`[1]`:                                        false,
		`{"logName":"x","protoPayload":{}`:           false,
	} {
		if got := LooksLikeLogEntry([]byte(data)); got != want {
			t.Errorf("LooksLikeLogEntry(%s) = %v", data, got)
		}
	}
}

// FuzzParseAuditEntry: whatever the input, an entry is either rejected with
// a bounded *Error, or names one person by a valid email and yields a
// request id that is valid as a sweep's.
func FuzzParseAuditEntry(f *testing.F) {
	f.Add([]byte(sinkEntry))
	f.Add([]byte(`{"insertId":"a","logName":"organizations/1/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseAuditEntry(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		v, err := Validate(Request{RequestID: ev.RequestID(), AllSpaces: true, Member: ev.Email})
		if err != nil {
			t.Fatalf("an accepted entry's sweep is invalid: %v", err)
		}
		checkValid(t, v)
		if len(v.People) != 1 || !IsEmail(v.People[0]) {
			t.Fatalf("people %v", v.People)
		}
	})
}
