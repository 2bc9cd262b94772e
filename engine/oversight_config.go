package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// Defaults of the oversight of sweeps that start themselves (issue 23).
const (
	// DefaultAutoOffboardDelay is the grace period of a Workspace-started
	// sweep: 72 hours spans a weekend, so that a suspension made by
	// mistake on a Friday evening and undone on Monday morning removes
	// nobody. Waiting takes no access away from anyone: a suspended,
	// archived or deleted person cannot sign in to Chat meanwhile; the
	// sweep only tidies their memberships and hands their spaces over.
	DefaultAutoOffboardDelay = 72 * time.Hour
	// DefaultAutoOffboardMaxPerHour is the brake: Workspace-started
	// sweeps beyond it in a rolling hour wait for an approval.
	DefaultAutoOffboardMaxPerHour = 10
)

// Oversight is what stands between a request and its effect: the grace
// period and the brake of Workspace-started sweeps, the forms that always
// wait for an approval, and the topic approvals come from. A plain value,
// read-only once loaded. The zero value holds nothing back.
type Oversight struct {
	// Delay is the grace period of a Workspace-started sweep
	// (AUTO_OFFBOARD_DELAY); 0: none.
	Delay time.Duration
	// MaxPerHour is the brake (AUTO_OFFBOARD_MAX_PER_HOUR): at most this
	// many Workspace-started sweeps start in a rolling hour, the others
	// wait for an approval; 0: no brake.
	MaxPerHour int
	// ApprovalRequired are the request forms that always wait for an
	// approval (APPROVAL_REQUIRED).
	ApprovalRequired []request.Kind
	// ApprovalTopic is the full name of the topic approvals, rejections
	// and cancels are taken from (APPROVAL_TOPIC); empty: none is.
	ApprovalTopic string
}

// requires reports whether requests of kind k wait for an approval.
func (o *Oversight) requires(k request.Kind) bool { return slices.Contains(o.ApprovalRequired, k) }

// approvableKinds are the forms APPROVAL_REQUIRED may name: the forms a
// publisher sends (children and continuations are never held: their parent
// was).
var approvableKinds = []request.Kind{request.KindMembership, request.KindSpaceMember, request.KindSpaceMembers,
	request.KindBulk, request.KindSweep, request.KindRestore}

// loadOversight reads AUTO_OFFBOARD_DELAY, AUTO_OFFBOARD_MAX_PER_HOUR,
// APPROVAL_REQUIRED and APPROVAL_TOPIC.
func (c *Config) loadOversight(getenv func(string) string) error {
	o := &c.Oversight
	o.Delay, o.MaxPerHour = DefaultAutoOffboardDelay, DefaultAutoOffboardMaxPerHour
	if v := strings.TrimSpace(getenv("AUTO_OFFBOARD_DELAY")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return &ConfigError{"AUTO_OFFBOARD_DELAY", fmt.Sprintf("%q is not a Go duration such as 72h (0 for none)", v)}
		}
		o.Delay = d
	}
	switch v := strings.TrimSpace(getenv("AUTO_OFFBOARD_MAX_PER_HOUR")); v {
	case "":
	case "off":
		o.MaxPerHour = 0
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return &ConfigError{"AUTO_OFFBOARD_MAX_PER_HOUR", fmt.Sprintf("%q is not a positive integer (or off)", v)}
		}
		o.MaxPerHour = n
	}
	for _, name := range splitList(getenv("APPROVAL_REQUIRED")) {
		i := slices.IndexFunc(approvableKinds, func(k request.Kind) bool { return k.String() == strings.ToLower(name) })
		if i < 0 {
			return &ConfigError{"APPROVAL_REQUIRED", fmt.Sprintf("%q is not a request form: give some of membership, space+member, space+members, bulk, sweep, restore", name)}
		}
		o.ApprovalRequired = append(o.ApprovalRequired, approvableKinds[i])
	}
	var err error
	if o.ApprovalTopic, err = contract.TopicName(getenv("APPROVAL_TOPIC"), c.Project); err != nil {
		return &ConfigError{"APPROVAL_TOPIC", err.Error()}
	}
	switch {
	case o.ApprovalTopic != "" && (o.ApprovalTopic == c.RequestTopic || o.ApprovalTopic == c.ResultTopic):
		return &ConfigError{"APPROVAL_TOPIC", "must differ from REQUEST_TOPIC and RESULT_TOPIC: only approvers may publish to it"}
	case o.ApprovalTopic == "" && len(o.ApprovalRequired) > 0:
		return &ConfigError{"APPROVAL_TOPIC", "required with APPROVAL_REQUIRED: the topic approvals come from"}
	}
	return nil
}
