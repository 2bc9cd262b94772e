package firestoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ownerCreds is what the client library sends to an emulator named by
// FIRESTORE_EMULATOR_HOST: "Bearer owner", the emulator's administrator, to
// whom security rules do not apply.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

// ClientOptions are the options that point a Firestore client at the emulator
// on host: plaintext gRPC, the emulator's "owner" credentials, no Google
// credentials. They do not touch the process environment, so clients for
// different emulators may be built concurrently. Options given to
// firestore.NewClient override FIRESTORE_EMULATOR_HOST.
func ClientOptions(host string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithGRPCDialOption(grpc.WithPerRPCCredentials(ownerCreds{})),
		option.WithTelemetryDisabled(),
	}
}

var idCounter atomic.Int64

// Project returns a project id that no other call in this process returns:
// prefix (lower-cased, other characters than letters, digits and '-' replaced
// by '-'; "test" if empty) followed by a counter and random hex. Since the
// emulator keeps the data of each project apart, a project id per test
// isolates tests from one another. Safe for concurrent use.
func Project(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "test-" + p
	}
	if len(p) > 60 {
		p = p[:60]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s-%d-%s", strings.TrimRight(p, "-"), idCounter.Add(1), hex.EncodeToString(rnd[:]))
}

// Client returns a Firestore client on the emulator (see [Emulator]) for a
// project id of its own, made from project by [Project], and that project id.
// The client works on the project's "(default)" database. At tb's cleanup the
// client is closed and the project's documents are deleted. Client skips or
// fails tb as [Emulator] does when there is no emulator. It may be called from
// parallel tests, and the client may be shared by goroutines.
func Client(tb testing.TB, project string) (*firestore.Client, string) {
	tb.Helper()
	host := Emulator(tb)
	if project == "" {
		project = tb.Name()
	}
	project = Project(project)
	c, err := firestore.NewClient(context.Background(), project, ClientOptions(host)...)
	if err != nil {
		tb.Fatalf("firestoretest: client for %s: %v", host, err)
	}
	tb.Cleanup(func() {
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Clear(ctx, host, project, ""); err != nil {
			tb.Logf("firestoretest: %v", err)
		}
	})
	return c, project
}

// Clear deletes every document of database (empty: "(default)") in project
// on the emulator at host, through the emulator's
// DELETE /emulator/v1/projects/P/databases/D/documents. Safe for concurrent
// use.
func Clear(ctx context.Context, host, project, database string) error {
	if database == "" {
		database = "(default)"
	}
	u := "http://" + host + "/emulator/v1/projects/" + url.PathEscape(project) +
		"/databases/" + url.PathEscape(database) + "/documents"
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("firestoretest: clear %s: %w", project, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("firestoretest: clear %s: %w", project, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("firestoretest: clear %s: %s: %s", project, resp.Status, body)
	}
	return nil
}
