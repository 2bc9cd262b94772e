// Package logging makes the structured JSON logs that Cloud Logging reads:
// one line per record with "severity", "message" and "time", and a CRITICAL
// level for what an operator must act on. The function, the token source
// and the tools all log through it.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// LevelCritical is logged as Cloud Logging's CRITICAL severity: the function
// cannot make progress until an operator acts (a revoked refresh token, a
// protection list that cannot be resolved).
const LevelCritical = slog.Level(12)

// New returns a JSON logger whose lines Cloud Logging understands:
// "severity" (DEBUG, INFO, WARNING, ERROR, CRITICAL), "message" and "time".
// The logger may be used from any number of goroutines.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: cloudLoggingAttr,
	}))
}

func cloudLoggingAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		lvl, _ := a.Value.Any().(slog.Level)
		a.Value = slog.StringValue(Severity(lvl))
	}
	return a
}

// Severity is Cloud Logging's name for a slog level.
func Severity(l slog.Level) string {
	switch {
	case l >= LevelCritical:
		return "CRITICAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// ParseLevel reads a LOG_LEVEL value: debug, info, warn (or warning) or
// error, in any letter case; "" is info.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch {
	case s == "":
		return slog.LevelInfo, nil
	case strings.EqualFold(s, "warning"):
		s = "warn"
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, err
	}
	return l, nil
}
