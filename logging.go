package offboard

import (
	"io"
	"log/slog"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// LevelCritical is logged as Cloud Logging's CRITICAL severity: the function
// cannot make progress until an operator acts (a revoked refresh token).
const LevelCritical = tokens.LevelCritical

// NewLogger returns a JSON logger whose lines Cloud Logging understands:
// "severity" (DEBUG, INFO, WARNING, ERROR, CRITICAL), "message" and "time".
// The logger may be used from any number of goroutines.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
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
		a.Value = slog.StringValue(severity(lvl))
	}
	return a
}

func severity(l slog.Level) string {
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
