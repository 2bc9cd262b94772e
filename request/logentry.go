// Audit entries: the Cloud Logging LogEntry of a Google Workspace Admin
// audit event (a person suspended, archived or deleted) as an organization
// log sink publishes it to Pub/Sub, and the request id derived from it.

package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The fixed parts of an Admin audit LogEntry (docs/design.md, "Offboarding
// that starts itself").
const (
	// AuditService is protoPayload.serviceName of the Admin audit log.
	AuditService = "admin.googleapis.com"
	// AuditLogSuffix ends the logName of the Admin Activity audit log of
	// an organization: organizations/ORG/logs/cloudaudit.googleapis.com%2Factivity.
	AuditLogSuffix = "/logs/cloudaudit.googleapis.com%2Factivity"
	// AuditRequestPrefix starts every request id derived from an audit
	// event.
	AuditRequestPrefix = "workspace-"

	auditLogType      = "type.googleapis.com/google.cloud.audit.AuditLog"
	auditActivityType = "type.googleapis.com/ccc_hosted_reporting.ActivityProto"
	auditMethodPrefix = "google.admin.AdminService."
)

// AuditMethods maps each protoPayload.methodName that offboards a person to
// the Reports API event name of the same activity. The keys are the six user
// suspensions and removals of Google's audit catalogue (the "Google
// Workspace Admin" methodName list of AUDIT_CATALOG.md in
// googleapis/google-cloudevents): an entry is recognised by its method
// alone, and its person is the USER_EMAIL parameter of its events whatever
// their names. The event names are what publish reconcile asks the Reports
// API for and what AuditEvent.LogEntry writes; AuditEventSources says which
// of them a Google reference names. Read-only: it is read concurrently and
// must not be modified.
var AuditMethods = map[string]string{
	auditMethodPrefix + "suspendUser":                    "SUSPEND_USER",
	auditMethodPrefix + "archiveUser":                    "ARCHIVE_USER",
	auditMethodPrefix + "deleteUser":                     "DELETE_USER",
	auditMethodPrefix + "suspendAutoProvisionedUser":     "SUSPEND_AUTO_PROVISIONED_USER",
	auditMethodPrefix + "deleteAutoProvisionedUser":      "DELETE_AUTO_PROVISIONED_USER",
	auditMethodPrefix + "hardDeletedAutoProvisionedUser": "HARD_DELETED_AUTO_PROVISIONED_USER",
}

// AuditEventSources maps each event name of AuditMethods to the Google
// reference that names it as a Reports API (applicationName=admin) event,
// or "" where none was found: such a name follows the naming of the others
// (the method in upper snake case) and is unconfirmed. publish reconcile
// queries only the names with a source and lists the others; the trigger
// does not depend on any of them. Read-only, like AuditMethods.
var AuditEventSources = map[string]string{
	"SUSPEND_USER":                       reportsUserSettings,
	"DELETE_USER":                        reportsUserSettings,
	"ARCHIVE_USER":                       "",
	"SUSPEND_AUTO_PROVISIONED_USER":      "",
	"DELETE_AUTO_PROVISIONED_USER":       "",
	"HARD_DELETED_AUTO_PROVISIONED_USER": "",
}

// reportsUserSettings is Google's list of the Admin audit "User Settings"
// events of the Reports API.
const reportsUserSettings = "https://developers.google.com/workspace/admin/reports/v1/appendix/activity/admin-user-settings"

// AuditEvent is one Admin audit event that offboards a person: what the
// function needs of its LogEntry. A plain value; its methods only read it.
type AuditEvent struct {
	InsertID     string // the LogEntry's insertId
	Organization string // the organization id of the logName
	Method       string // protoPayload.methodName, a key of AuditMethods
	EventName    string // the eventName of the event that names the person, whatever it is ("" if not [A-Za-z0-9_]{1,80})
	Email        string // the person: the event's USER_EMAIL parameter
	Actor        string // protoPayload.authenticationInfo.principalEmail; may be empty
	// Time and UniqueQualifier are the activity's id
	// (metadata.activityId.timeUsec and uniqQualifier), the same id the
	// Reports API gives the activity (id.time, id.uniqueQualifier).
	// HasActivityID is false when the entry carries none.
	Time            time.Time
	UniqueQualifier int64
	HasActivityID   bool
}

// AuditRequestID is the request id of the Admin audit activity with the
// given id (Reports API id.time and id.uniqueQualifier; in a LogEntry
// metadata.activityId.timeUsec and uniqQualifier):
// "workspace-{time in Unix milliseconds}-{uniqueQualifier}". The time is
// cut to milliseconds because the Reports API gives no finer time while a
// LogEntry may. A LogEntry and a reconciliation from the Reports API derive
// the same id, so the ledger acts on the activity once whichever way it
// arrives. Safe for concurrent use, as everything in this package.
func AuditRequestID(at time.Time, uniqueQualifier int64) string {
	return fmt.Sprintf("%s%d-%d", AuditRequestPrefix, at.UnixMilli(), uniqueQualifier)
}

// What names the event for people: its event name, or its method when the
// entry gave no usable event name.
func (e *AuditEvent) What() string {
	if e.EventName != "" {
		return e.EventName
	}
	return strings.TrimPrefix(e.Method, auditMethodPrefix)
}

// RequestID is the request id of the event: AuditRequestID of its activity
// id, or "workspace-entry-{insertId}" for an entry without one.
func (e *AuditEvent) RequestID() string {
	if e.HasActivityID {
		return AuditRequestID(e.Time, e.UniqueQualifier)
	}
	return AuditRequestPrefix + "entry-" + e.InsertID
}

// logEntry is the part of a LogEntry that ParseAuditEntry reads.
type logEntry struct {
	InsertID     *string `json:"insertId"`
	LogName      *string `json:"logName"`
	ProtoPayload *struct {
		Type               string `json:"@type"`
		ServiceName        string `json:"serviceName"`
		MethodName         string `json:"methodName"`
		AuthenticationInfo *struct {
			PrincipalEmail string `json:"principalEmail"`
		} `json:"authenticationInfo"`
		Metadata *struct {
			Type       string `json:"@type"`
			ActivityID *struct {
				TimeUsec      string `json:"timeUsec"`
				UniqQualifier string `json:"uniqQualifier"`
			} `json:"activityId"`
			Event []auditEventJSON `json:"event"`
		} `json:"metadata"`
	} `json:"protoPayload"`
}

type auditEventJSON struct {
	EventName string `json:"eventName"`
	EventType string `json:"eventType,omitempty"`
	Parameter []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
		Type  string `json:"type,omitempty"`
		Label string `json:"label,omitempty"`
	} `json:"parameter"`
}

var (
	insertIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// eventNameRE is what an event name must look like to be shown.
	eventNameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,80}$`)
	orgLogRE    = regexp.MustCompile(`^organizations/([0-9]{1,32})/logs/cloudaudit\.googleapis\.com%2Factivity$`)
)

// LooksLikeLogEntry reports whether data is a JSON object with the
// top-level fields of a Cloud Logging LogEntry (logName and protoPayload):
// such data is read as an audit entry, not as a removal request.
func LooksLikeLogEntry(data []byte) bool {
	if len(data) == 0 || len(data) > MaxSize {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	_, name := top["logName"]
	_, payload := top["protoPayload"]
	return name && payload
}

// ParseAuditEntry reads the LogEntry of an Admin audit event that offboards
// a person. It is strict: the Admin Activity audit log of an organization,
// serviceName admin.googleapis.com, a method of AuditMethods, exactly one
// person named (the USER_EMAIL parameter, looked up by name, of its events,
// whatever their event names: Google does not publish which name each method
// logs), and a well-formed activity id or insertId. The error is always an
// *Error naming the LogEntry field.
func ParseAuditEntry(data []byte) (*AuditEvent, error) {
	e, err := decodeLogEntry(data)
	if err != nil {
		return nil, err
	}
	ev := &AuditEvent{InsertID: *e.InsertID}
	if !insertIDRE.MatchString(ev.InsertID) {
		return nil, invalid("insertId", "must be 1 to 128 of A-Z a-z 0-9 - _, got %s", quote(ev.InsertID))
	}
	m := orgLogRE.FindStringSubmatch(*e.LogName)
	if m == nil {
		return nil, invalid("logName", "must be organizations/ORG%s (the Admin Activity audit log of an organization), got %s", AuditLogSuffix, quote(*e.LogName))
	}
	ev.Organization = m[1]
	p := e.ProtoPayload
	switch {
	case p.Type != auditLogType:
		return nil, invalid("protoPayload.@type", "must be %s, got %s", auditLogType, quote(p.Type))
	case p.ServiceName != AuditService:
		return nil, invalid("protoPayload.serviceName", "must be %s, got %s", AuditService, quote(p.ServiceName))
	case AuditMethods[p.MethodName] == "":
		return nil, invalid("protoPayload.methodName", "%s does not offboard anyone; expected one of %s", quote(p.MethodName), strings.Join(auditMethodNames(), ", "))
	case p.Metadata == nil:
		return nil, invalid("protoPayload.metadata", "missing")
	case p.Metadata.Type != auditActivityType:
		return nil, invalid("protoPayload.metadata.@type", "must be %s, got %s", auditActivityType, quote(p.Metadata.Type))
	}
	ev.Method = p.MethodName
	if p.AuthenticationInfo != nil {
		ev.Actor = Clip(p.AuthenticationInfo.PrincipalEmail)
	}
	if ev.Email, ev.EventName, err = auditPerson(p.Metadata.Event); err != nil {
		return nil, err
	}
	if a := p.Metadata.ActivityID; a != nil {
		if ev.Time, ev.UniqueQualifier, err = activityID(a.TimeUsec, a.UniqQualifier); err != nil {
			return nil, err
		}
		ev.HasActivityID = true
	}
	return ev, nil
}

// decodeLogEntry decodes data as a LogEntry with the fields an audit entry
// needs present.
func decodeLogEntry(data []byte) (*logEntry, error) {
	switch {
	case len(data) == 0:
		return nil, invalid("", "empty message data")
	case len(data) > MaxSize:
		return nil, invalid("", "message data is %d bytes, more than the limit of %d", len(data), MaxSize)
	case !utf8.Valid(data):
		return nil, invalid("", "message data is not valid UTF-8")
	}
	if err := checkEntryKeys(data); err != nil {
		return nil, err
	}
	var e logEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&e); err != nil {
		je := jsonError(err)
		je.Reason = "LogEntry: " + je.Reason
		return nil, je
	}
	if dec.More() {
		return nil, invalid("", "unexpected data after the LogEntry")
	}
	switch {
	case e.InsertID == nil:
		return nil, invalid("insertId", "missing (not a LogEntry as a log sink publishes it)")
	case e.LogName == nil:
		return nil, invalid("logName", "missing")
	case e.ProtoPayload == nil:
		return nil, invalid("protoPayload", "missing")
	}
	return &e, nil
}

// auditPerson is the one person the events name in their USER_EMAIL
// parameter, and the name of the (first) event that names them. Events are
// not told apart by name, and parameters are looked up by name: their order
// varies.
func auditPerson(events []auditEventJSON) (person, eventName string, err error) {
	for i, ev := range events {
		field := fmt.Sprintf("protoPayload.metadata.event[%d].parameter", i)
		email, n := "", 0
		for _, p := range ev.Parameter {
			if p.Name == "USER_EMAIL" {
				email, n = p.Value, n+1
			}
		}
		switch {
		case n == 0:
			continue
		case n > 1:
			return "", "", invalid(field, "USER_EMAIL given %d times", n)
		}
		seg, err := MemberSegment(field+"[USER_EMAIL]", email)
		if err != nil {
			return "", "", err
		}
		if !IsEmail(seg) {
			return "", "", invalid(field+"[USER_EMAIL]", "not an email address: %s", quote(email))
		}
		if person != "" && !strings.EqualFold(person, seg) {
			return "", "", invalid("protoPayload.metadata.event", "the entry names more than one person (%s and %s); publish a request for each", quote(person), quote(seg))
		}
		if person == "" {
			person = seg
			if eventNameRE.MatchString(ev.EventName) {
				eventName = ev.EventName
			}
		}
	}
	if person == "" {
		return "", "", invalid("protoPayload.metadata.event", "no event has a USER_EMAIL parameter: the entry names nobody")
	}
	return person, eventName, nil
}

// activityID parses metadata.activityId: decimal timeUsec (positive) and
// uniqQualifier (a signed 64-bit integer).
func activityID(timeUsec, uniq string) (time.Time, int64, error) {
	us, err := strconv.ParseInt(timeUsec, 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}, 0, invalid("protoPayload.metadata.activityId.timeUsec", "must be a positive decimal number of microseconds, got %s", quote(timeUsec))
	}
	q, err := strconv.ParseInt(uniq, 10, 64)
	if err != nil {
		return time.Time{}, 0, invalid("protoPayload.metadata.activityId.uniqQualifier", "must be a decimal 64-bit integer, got %s", quote(uniq))
	}
	return time.UnixMicro(us).UTC(), q, nil
}

// auditMethodNames are the keys of AuditMethods, sorted.
func auditMethodNames() []string {
	names := make([]string, 0, len(AuditMethods))
	for m := range AuditMethods {
		names = append(names, strings.TrimPrefix(m, auditMethodPrefix))
	}
	slices.Sort(names)
	return names
}

// LogEntry encodes the event as the LogEntry JSON an organization log sink
// publishes for it (the fields ParseAuditEntry reads, and the resource,
// timestamp and severity Cloud Logging adds): for tests, the sandbox, and
// a reconciliation that replays a missed activity through the same path.
func (e *AuditEvent) LogEntry() []byte {
	type param struct {
		Type  string `json:"type"`
		Label string `json:"label"`
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type event struct {
		EventType string  `json:"eventType"`
		EventName string  `json:"eventName"`
		Parameter []param `json:"parameter"`
	}
	metadata := map[string]any{
		"@type": auditActivityType,
		"event": []event{{EventType: "USER_SETTINGS", EventName: e.EventName,
			Parameter: []param{{Type: "TYPE_STRING", Label: "LABEL_OPTIONAL", Name: "USER_EMAIL", Value: e.Email}}}},
	}
	if e.HasActivityID {
		metadata["activityId"] = map[string]string{
			"timeUsec":      strconv.FormatInt(e.Time.UnixMicro(), 10),
			"uniqQualifier": strconv.FormatInt(e.UniqueQualifier, 10),
		}
	}
	entry := map[string]any{
		"insertId": e.InsertID,
		"logName":  "organizations/" + e.Organization + AuditLogSuffix,
		"protoPayload": map[string]any{
			"@type":              auditLogType,
			"authenticationInfo": map[string]string{"principalEmail": e.Actor},
			"serviceName":        AuditService,
			"methodName":         e.Method,
			"resourceName":       "organizations/" + e.Organization + "/userSettings",
			"metadata":           metadata,
		},
		"resource": map[string]any{"type": "audited_resource",
			"labels": map[string]string{"service": AuditService, "method": e.Method}},
		"timestamp": e.Time.UTC().Format(time.RFC3339Nano),
		"severity":  "NOTICE",
	}
	data, err := json.Marshal(entry)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return data
}
