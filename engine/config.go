package engine

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/ledger"
	"github.com/chat-offboard/chat-offboard/logging"
	"github.com/chat-offboard/chat-offboard/request"
	"github.com/chat-offboard/chat-offboard/tokens"
)

// Default budgets: the Chat API's per-project quotas for membership writes
// and reads, per minute.
const (
	DefaultWritesPerMinute = 300
	DefaultReadsPerMinute  = 3000
	// DefaultMaxEventAge stays below Pub/Sub's and Eventarc's 24 h retry
	// window, so that an event is answered before the platform drops it.
	DefaultMaxEventAge = 23 * time.Hour
	// DefaultReplayWindow is how long the same request under the same id
	// is answered from the ledger (REQUEST_REPLAY_WINDOW): it covers
	// Pub/Sub's redelivery (message retention is at most 7 days) and a
	// publisher's retries.
	DefaultReplayWindow = 7 * 24 * time.Hour
)

// Config is the function's configuration, read from the environment
// (docs/design.md, "Configuration"). The zero value is not valid; use LoadConfig.
type Config struct {
	Project         string
	TokenSecret     string // full version name, projects/P/secrets/S/versions/V
	ResultTopic     string // full topic name
	RequestTopic    string // full topic name; empty disables fan-out
	Protected       []string
	MaxEventAge     time.Duration
	WritesPerMinute int
	ReadsPerMinute  int
	LogLevel        slog.Level

	ChatEndpoint          string
	DirectoryEndpoint     string
	OAuthTokenURL         string
	SecretManagerEndpoint string
	// FirestoreDatabase is the ledger's Firestore database id
	// (FIRESTORE_DATABASE, default "(default)") in Project.
	FirestoreDatabase string
	// LedgerRetention is how long ledger records are kept after their last
	// write (LEDGER_RETENTION, default 400 days), by a Firestore TTL policy.
	LedgerRetention time.Duration
	// ReplayWindow is how long after a request id was first used the same
	// request under it is answered from the ledger (REQUEST_REPLAY_WINDOW,
	// default 7 days, between MAX_EVENT_AGE and LEDGER_RETENTION); later
	// it is answered id_reused.
	ReplayWindow time.Duration
	// EventTimeout bounds one invocation when its context carries no
	// deadline: INVOCATION_TIMEOUT (deploy.sh sets it to the function's
	// --timeout), else CLOUD_RUN_TIMEOUT_SECONDS (which the functions
	// framework also applies to the request context), else 9 minutes.
	EventTimeout time.Duration
	// AutoOffboard limits and shapes the sweeps that Admin audit
	// LogEntries start (engine/trigger.go).
	AutoOffboard AutoOffboard
	// Oversight holds requests back: grace period, brake, approvals
	// (engine/oversight_config.go).
	Oversight Oversight
}

// ConfigError names the environment variable that is wrong.
type ConfigError struct {
	Var    string
	Reason string
}

// Error names the variable and the reason.
func (e *ConfigError) Error() string { return "configuration: " + e.Var + ": " + e.Reason }

// LoadConfig reads the configuration through getenv (os.Getenv in
// production). The error is a *ConfigError naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Project:               strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT")),
		MaxEventAge:           DefaultMaxEventAge,
		WritesPerMinute:       DefaultWritesPerMinute,
		ReadsPerMinute:        DefaultReadsPerMinute,
		ChatEndpoint:          getenv("CHAT_ENDPOINT"),
		DirectoryEndpoint:     getenv("DIRECTORY_ENDPOINT"),
		OAuthTokenURL:         getenv("OAUTH_TOKEN_URL"),
		SecretManagerEndpoint: getenv("SECRET_MANAGER_ENDPOINT"),
		EventTimeout:          9 * time.Minute,
		FirestoreDatabase:     ledger.DefaultDatabase,
		LedgerRetention:       ledger.DefaultRetention,
	}
	for _, step := range []func(*Config, func(string) string) error{
		(*Config).loadCredentials, (*Config).loadTopics, (*Config).loadProtected,
		(*Config).loadLimits, (*Config).loadRuntime, (*Config).loadLedger,
		(*Config).loadAutoOffboard, (*Config).loadOversight,
	} {
		if err := step(&c, getenv); err != nil {
			return c, err
		}
	}
	return c, nil
}

// loadCredentials reads the project, the token secret and the endpoint
// overrides (checkEndpoints).
func (c *Config) loadCredentials(getenv func(string) string) error {
	if err := c.checkEndpoints(); err != nil {
		return err
	}
	if c.Project == "" {
		return &ConfigError{"GOOGLE_CLOUD_PROJECT", "required: the project of the topics and the secret"}
	}
	if strings.ContainsAny(c.Project, "/ ") {
		return &ConfigError{"GOOGLE_CLOUD_PROJECT", "a project id has no '/' or spaces"}
	}
	sec := strings.TrimSpace(getenv("TOKEN_SECRET"))
	if sec == "" {
		return &ConfigError{"TOKEN_SECRET", "required: projects/P/secrets/S/versions/V or a secret id"}
	}
	name, err := tokens.SecretVersionName(sec, c.Project)
	if err != nil {
		return &ConfigError{"TOKEN_SECRET", err.Error()}
	}
	c.TokenSecret = name
	return nil
}

// checkEndpoints refuses an endpoint override that could send the admin's
// credentials anywhere but Google or this machine: CHAT_ENDPOINT and
// DIRECTORY_ENDPOINT (tokens.CheckAPIEndpoint), OAUTH_TOKEN_URL
// (tokens.CheckOAuthURL) and SECRET_MANAGER_ENDPOINT (plaintext gRPC:
// loopback host:port only). Unset, each is Google's default.
func (c *Config) checkEndpoints() error {
	for _, e := range []struct {
		name, value string
		check       func(field, raw string) error
	}{
		{"CHAT_ENDPOINT", c.ChatEndpoint, tokens.CheckAPIEndpoint},
		{"DIRECTORY_ENDPOINT", c.DirectoryEndpoint, tokens.CheckAPIEndpoint},
		{"OAUTH_TOKEN_URL", c.OAuthTokenURL, tokens.CheckOAuthURL},
		{"SECRET_MANAGER_ENDPOINT", c.SecretManagerEndpoint, func(_, raw string) error { return tokens.CheckLoopback(raw) }},
	} {
		if e.value == "" {
			continue
		}
		if err := e.check(e.name, e.value); err != nil {
			return &ConfigError{e.name, err.Error()}
		}
	}
	return nil
}

// loadTopics reads RESULT_TOPIC and REQUEST_TOPIC, which must differ.
func (c *Config) loadTopics(getenv func(string) string) error {
	var err error
	if c.ResultTopic, err = contract.TopicName(getenv("RESULT_TOPIC"), c.Project); err != nil {
		return &ConfigError{"RESULT_TOPIC", err.Error()}
	}
	if c.ResultTopic == "" {
		return &ConfigError{"RESULT_TOPIC", "required: the topic that result events are published to"}
	}
	if c.RequestTopic, err = contract.TopicName(getenv("REQUEST_TOPIC"), c.Project); err != nil {
		return &ConfigError{"REQUEST_TOPIC", err.Error()}
	}
	if c.RequestTopic != "" && c.RequestTopic == c.ResultTopic {
		return &ConfigError{"RESULT_TOPIC", "must differ from REQUEST_TOPIC (" + c.RequestTopic + "): results published to the requests topic would come back as requests"}
	}
	return nil
}

// loadProtected reads PROTECTED_MEMBERS: member segments, checked by the
// request validator's rules (resolved to user ids at the first event).
func (c *Config) loadProtected(getenv func(string) string) error {
	for _, p := range strings.Split(getenv("PROTECTED_MEMBERS"), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		seg, err := request.MemberSegment("PROTECTED_MEMBERS", p)
		if err != nil {
			return &ConfigError{"PROTECTED_MEMBERS", fmt.Sprintf("%q: %v", p, err)}
		}
		c.Protected = append(c.Protected, strings.ToLower(seg))
	}
	return nil
}

// loadLimits reads MAX_EVENT_AGE and the per-minute budgets.
func (c *Config) loadLimits(getenv func(string) string) error {
	if v := getenv("MAX_EVENT_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return &ConfigError{"MAX_EVENT_AGE", fmt.Sprintf("%q is not a positive Go duration such as 23h", v)}
		}
		c.MaxEventAge = d
	}
	for _, b := range []struct {
		name string
		dst  *int
	}{{"CHAT_WRITES_PER_MINUTE", &c.WritesPerMinute}, {"CHAT_READS_PER_MINUTE", &c.ReadsPerMinute}} {
		if v := getenv(b.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return &ConfigError{b.name, fmt.Sprintf("%q is not a positive integer", v)}
			}
			*b.dst = n
		}
	}
	return nil
}

// loadRuntime reads LOG_LEVEL and the invocation timeout.
func (c *Config) loadRuntime(getenv func(string) string) error {
	var err error
	if c.LogLevel, err = logging.ParseLevel(strings.TrimSpace(getenv("LOG_LEVEL"))); err != nil {
		return &ConfigError{"LOG_LEVEL", fmt.Sprintf("%q is not debug, info, warn or error", getenv("LOG_LEVEL"))}
	}
	if v := getenv("CLOUD_RUN_TIMEOUT_SECONDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.EventTimeout = time.Duration(n) * time.Second
		}
	}
	if v := getenv("INVOCATION_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return &ConfigError{"INVOCATION_TIMEOUT", fmt.Sprintf("%q is not a positive Go duration such as 540s", v)}
		}
		c.EventTimeout = d
	}
	return nil
}

// loadLedger reads FIRESTORE_DATABASE and LEDGER_RETENTION.
func (c *Config) loadLedger(getenv func(string) string) error {
	if v := strings.TrimSpace(getenv("FIRESTORE_DATABASE")); v != "" {
		if !validDatabaseID(v) {
			return &ConfigError{"FIRESTORE_DATABASE", fmt.Sprintf("%q is not (default) or a database id of 4 to 63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen", v)}
		}
		c.FirestoreDatabase = v
	}
	if v := getenv("LEDGER_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 24*time.Hour {
			return &ConfigError{"LEDGER_RETENTION", fmt.Sprintf("%q is not a Go duration of at least 24h, such as 9600h (400 days)", v)}
		}
		c.LedgerRetention = d
	}
	return c.loadReplayWindow(getenv)
}

// loadReplayWindow reads REQUEST_REPLAY_WINDOW: at least MAX_EVENT_AGE (a
// redelivery that may still act is always answered from the ledger) and at
// most LEDGER_RETENTION (a record that expired forgets its id). Unset, it is
// DefaultReplayWindow kept within those bounds.
func (c *Config) loadReplayWindow(getenv func(string) string) error {
	v := getenv("REQUEST_REPLAY_WINDOW")
	if v == "" {
		c.ReplayWindow = min(max(DefaultReplayWindow, c.MaxEventAge), c.LedgerRetention)
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil || d <= 0:
		return &ConfigError{"REQUEST_REPLAY_WINDOW", fmt.Sprintf("%q is not a positive Go duration such as 168h (7 days)", v)}
	case d < c.MaxEventAge:
		return &ConfigError{"REQUEST_REPLAY_WINDOW", fmt.Sprintf("%s is shorter than MAX_EVENT_AGE (%s): a redelivered request could be refused as a reused id", d, c.MaxEventAge)}
	case d > c.LedgerRetention:
		return &ConfigError{"REQUEST_REPLAY_WINDOW", fmt.Sprintf("%s is longer than LEDGER_RETENTION (%s): the ledger forgets an id before its window ends", d, c.LedgerRetention)}
	}
	c.ReplayWindow = d
	return nil
}

// validDatabaseID reports whether id is a Firestore database id.
func validDatabaseID(id string) bool {
	if id == ledger.DefaultDatabase {
		return true
	}
	if len(id) < 4 || len(id) > 63 || id[0] < 'a' || id[0] > 'z' || id[len(id)-1] == '-' {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
