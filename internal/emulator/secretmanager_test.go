package emulator_test

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"testing"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// smClient shows how a client connects to the emulation.
func smClient(t *testing.T, sm *emulator.SecretManager) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(),
		option.WithEndpoint(sm.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

func TestSecretManager(t *testing.T) {
	ctx := context.Background()
	st := startStack(t, emulator.ChatOptions{})
	sm := st.Secrets
	c := smClient(t, sm)
	access := func(name string) (*secretmanagerpb.AccessSecretVersionResponse, error) {
		return c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, noRetry)
	}

	// The Stack's credential.
	r, err := access(st.SecretName + "/versions/latest")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != st.SecretName+"/versions/1" {
		t.Fatalf("name = %q", r.Name)
	}
	if r.Payload.DataCrc32C == nil || uint32(*r.Payload.DataCrc32C) != crc32.Checksum(r.Payload.Data, crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatalf("crc = %v", r.Payload.DataCrc32C)
	}
	var cred map[string]string
	if err := json.Unmarshal(r.Payload.Data, &cred); err != nil || cred["type"] != "authorized_user" || cred["refresh_token"] != st.RefreshToken || cred["token_uri"] != st.OAuth.TokenURL() {
		t.Fatalf("credential = %v, %v", cred, err)
	}

	// Versions through the client, with a checksum.
	data := []byte("v2 data")
	crc := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	v, err := c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: st.SecretName, Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &crc}})
	if err != nil || v.Name != st.SecretName+"/versions/2" || !v.ClientSpecifiedPayloadChecksum {
		t.Fatalf("add = %v, %v", v, err)
	}
	badCRC := crc + 1
	_, err = c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{Parent: st.SecretName, Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &badCRC}})
	wantCode(t, err, codes.InvalidArgument)
	if r, err := access(st.SecretName + "/versions/latest"); err != nil || string(r.Payload.Data) != "v2 data" {
		t.Fatalf("latest = %v, %v", r, err)
	}

	// Disabled versions: FAILED_PRECONDITION. latest is the most recently
	// created version whatever its state (Google's alias): disabling the
	// newest does not fall back to version 1.
	if _, err := c.DisableSecretVersion(ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: st.SecretName + "/versions/2"}); err != nil {
		t.Fatal(err)
	}
	_, err = access(st.SecretName + "/versions/2")
	wantCode(t, err, codes.FailedPrecondition)
	_, err = access(st.SecretName + "/versions/latest")
	wantCode(t, err, codes.FailedPrecondition)
	if v, err := c.GetSecretVersion(ctx, &secretmanagerpb.GetSecretVersionRequest{Name: st.SecretName + "/versions/latest"}); err != nil ||
		v.Name != st.SecretName+"/versions/2" || v.State != secretmanagerpb.SecretVersion_DISABLED {
		t.Fatalf("GetSecretVersion(latest) after disable = %v, %v; want version 2, DISABLED", v, err)
	}
	if r, err := access(st.SecretName + "/versions/1"); err != nil || string(r.Payload.Data) == "v2 data" {
		t.Fatalf("version 1 after disabling 2 = %v, %v", r, err)
	}
	_, err = c.DisableSecretVersion(ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: st.SecretName + "/versions/latest"})
	wantCode(t, err, codes.InvalidArgument)
	// The fixes: enable the newest again, or add a newer version.
	if _, err := c.EnableSecretVersion(ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: st.SecretName + "/versions/2"}); err != nil {
		t.Fatal(err)
	}
	if r, err := access(st.SecretName + "/versions/latest"); err != nil || r.Name != st.SecretName+"/versions/2" {
		t.Fatalf("latest after enabling 2 again = %v, %v", r, err)
	}

	// Unknown and malformed names.
	_, err = access(st.SecretName + "/versions/9")
	wantCode(t, err, codes.NotFound)
	_, err = access("projects/" + st.Project + "/secrets/nope/versions/latest")
	wantCode(t, err, codes.NotFound)
	for _, bad := range []string{st.SecretName, st.SecretName + "/versions/0", st.SecretName + "/versions/01", st.SecretName + "/versions/latest/x", "projects/p/secrets/../versions/1"} {
		_, err = access(bad)
		wantCode(t, err, codes.InvalidArgument)
	}

	// Checksum options.
	sm.SetCorruptChecksum(true)
	r, _ = access(st.SecretName + "/versions/1")
	if uint32(*r.Payload.DataCrc32C) == crc32.Checksum(r.Payload.Data, crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatal("checksum not corrupted")
	}
	sm.SetCorruptChecksum(false)
	sm.SetOmitChecksum(true)
	if r, _ = access(st.SecretName + "/versions/1"); r.Payload.DataCrc32C != nil {
		t.Fatal("checksum not omitted")
	}
	sm.SetOmitChecksum(false)
	if !sm.SetSecretOmitChecksum(st.SecretName, true) {
		t.Fatal("secret unknown")
	}
	if r, _ = access(st.SecretName + "/versions/1"); r.Payload.DataCrc32C != nil {
		t.Fatal("checksum not omitted for the secret")
	}

	// CreateSecret / GetSecret.
	sec, err := c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: "projects/p2", SecretId: "s2", Secret: &secretmanagerpb.Secret{
		Replication: &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}},
	}})
	if err != nil || sec.Name != "projects/p2/secrets/s2" {
		t.Fatalf("create = %v, %v", sec, err)
	}
	_, err = c.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{Parent: "projects/p2", SecretId: "s2", Secret: sec})
	wantCode(t, err, codes.AlreadyExists)
	if g, err := c.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/p2/secrets/s2"}); err != nil || g.Name != sec.Name {
		t.Fatalf("get = %v, %v", g, err)
	}
	_, err = access("projects/p2/secrets/s2/versions/latest")
	wantCode(t, err, codes.NotFound)
	if n := sm.AddVersion("p2", "s2", []byte("x")); n != "projects/p2/secrets/s2/versions/1" {
		t.Fatalf("AddVersion = %q", n)
	}

	// Faults.
	sm.InjectFault(emulator.Fault{Method: "secrets.access", Status: 403, Times: 1})
	_, err = access(st.SecretName + "/versions/1")
	wantCode(t, err, codes.PermissionDenied)
	sm.InjectFault(emulator.Fault{Method: "secrets.access", Status: 503, Times: 1})
	_, err = access(st.SecretName + "/versions/1")
	wantCode(t, err, codes.Unavailable)
	sm.InjectFault(emulator.Fault{Method: "secrets.access", Drop: true, Times: 1})
	_, err = access(st.SecretName + "/versions/1")
	wantCode(t, err, codes.Unavailable)
	sm.InjectFault(emulator.Fault{Method: "secrets.access", Status: 429, Times: 1})
	_, err = access(st.SecretName + "/versions/1")
	wantCode(t, err, codes.ResourceExhausted)
	sm.InjectFault(emulator.Fault{Method: "secrets.add", Status: 500})
	_, err = access(st.SecretName + "/versions/1") // other methods unaffected
	if err != nil {
		t.Fatal(err)
	}
	sm.ClearFaults()

	s := sm.Stats()
	if s.Faulted != 4 || s.Adds != 3 || s.Accesses < 15 {
		t.Fatalf("stats = %+v", s)
	}
}
