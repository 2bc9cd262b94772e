package request

import (
	"errors"
	"strings"
	"testing"
)

// TestLogEntryKeysExact: a LogEntry is read only with its keys spelled
// exactly and each given once. Before, encoding/json took "MethodName" or
// "ſerviceName" (U+017F folds to s) for the field, and of two equal keys
// the last: a reader that sees the entry one way could be shown a
// suspension while the function read a deletion, or the reverse.
func TestLogEntryKeysExact(t *testing.T) {
	if _, err := ParseAuditEntry([]byte(sinkEntry)); err != nil {
		t.Fatalf("the sample: %v", err)
	}
	for _, c := range []struct {
		name, old, new, field, reason string
	}{
		{"case-folded methodName", `"methodName"`, `"MethodName"`, "protoPayload.MethodName", "spelled methodName"},
		{"Unicode-folded serviceName", `"serviceName"`, `"ſerviceName"`, "protoPayload.ſerviceName", "spelled serviceName"},
		{"case-folded eventName", `"eventName"`, `"EVENTNAME"`, "protoPayload.metadata.event[0].EVENTNAME", "spelled eventName"},
		{"case-folded parameter name", `"name":"USER_EMAIL"`, `"Name":"USER_EMAIL"`, "protoPayload.metadata.event[0].parameter[1].Name", "spelled name"},
		{"methodName twice", `"methodName":"google.admin.AdminService.suspendUser"`,
			`"methodName":"google.admin.AdminService.suspendUser","methodName":"google.admin.AdminService.deleteUser"`, "protoPayload.methodName", "duplicate"},
		{"insertId twice", `"insertId":"fjwwoaeb955f"`, `"insertId":"fjwwoaeb955f","insertId":"other"`, "insertId", "duplicate"},
		{"a duplicate in a field not read", `"severity":"NOTICE"`, `"severity":"NOTICE","severity":"INFO"`, "severity", "duplicate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := strings.Replace(sinkEntry, c.old, c.new, 1)
			if data == sinkEntry {
				t.Fatal("the replacement did not apply")
			}
			_, err := ParseAuditEntry([]byte(data))
			var re *Error
			if !errors.As(err, &re) || re.Field != c.field || !strings.Contains(re.Reason, c.reason) {
				t.Fatalf("got %v, want an invalid %s with %q", err, c.field, c.reason)
			}
		})
	}
	deep := `{"insertId":"a","logName":"x","protoPayload":{},"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}"
	if _, err := ParseAuditEntry([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("40 deep: %v", err)
	}
	// Keys of fields not read stay free, in any case.
	ok := strings.Replace(sinkEntry, `"callerIp"`, `"CallerIP"`, 1)
	if _, err := ParseAuditEntry([]byte(ok)); err != nil {
		t.Errorf("a key of a field not read, in another case: %v", err)
	}
}
