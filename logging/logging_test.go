package logging

import (
	"log/slog"
	"testing"
)

func TestParseLevel(t *testing.T) {
	cases := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"DEBUG", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"Info", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"WARN", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"WARNING", slog.LevelWarn, false},
		{"Warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"ERROR", slog.LevelError, false},
		{"eRRoR", slog.LevelError, false},
		{"loud", 0, true},
		{"critical", 0, true},
		{"verbose", 0, true},
		{"warnings", 0, true},
		{" info", 0, true},
		{"3", 0, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseLevel(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("ParseLevel(%q) error = %v, want error %v", c.in, err, c.wantErr)
			}
			if err == nil && got != c.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}
