package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chat-offboard/chat-offboard/tokens"
)

// openDestination checks where the credential will go before the consent is
// asked for: the Secret Manager secret (created with --create), whose client
// it returns, or the --out file's directory (then the client is nil).
func openDestination(ctx context.Context, o *options, stdout io.Writer) (*secretmanager.Client, error) {
	if o.secret == "" {
		if st, err := os.Stat(filepath.Dir(o.out)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--out %s: the directory does not exist", o.out)
		}
		return nil, nil
	}
	sm, err := secretManager(ctx, o.smEndpoint)
	if err != nil {
		return nil, err
	}
	if err := ensureSecret(ctx, sm, o.secret, o.create, stdout); err != nil {
		sm.Close()
		return nil, err
	}
	return sm, nil
}

// store writes the credential to the --out file or adds it as a version of
// the secret, and says where it went.
func store(ctx context.Context, o *options, sm *secretmanager.Client, payload []byte, stdout io.Writer) error {
	if o.out != "" {
		if err := writeFile0600(o.out, payload); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Wrote the authorized_user credential to %s (mode 0600).\n", o.out)
		return nil
	}
	name, err := addVersion(ctx, sm, o.secret, payload)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Stored the authorized_user credential as secret version %s.\n", name)
	fmt.Fprintf(stdout, "The function reads versions/latest at its next start or its next invalid_grant.\n")
	return nil
}

// writeFile0600 writes data to path atomically (a temporary file in the same
// directory, renamed), with mode 0600 whatever the umask or an older file's
// mode.
func writeFile0600(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".authorize-*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// secretManager dials Secret Manager: Google's with Application Default
// Credentials, or a loopback emulator in plaintext.
func secretManager(ctx context.Context, endpoint string) (*secretmanager.Client, error) {
	c, err := tokens.NewSecretManagerClient(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w (are Application Default Credentials set up? gcloud auth application-default login)", err)
	}
	return c, nil
}

// ensureSecret checks that the secret exists, creating it when create is set.
func ensureSecret(ctx context.Context, sm *secretmanager.Client, name string, create bool, stdout io.Writer) error {
	_, err := sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name})
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.NotFound:
	case codes.PermissionDenied:
		if !create {
			// Adding versions (roles/secretmanager.secretVersionAdder)
			// does not need to read the secret: let the add decide.
			fmt.Fprintf(stdout, "Cannot check secret %s (permission denied); will try to add a version anyway.\n", name)
			return nil
		}
		return fmt.Errorf("reading secret %s: %w", name, err)
	default:
		return fmt.Errorf("reading secret %s: %w", name, err)
	}
	if !create {
		return fmt.Errorf("secret %s does not exist: run deploy.sh first, or pass --create", name)
	}
	i := strings.LastIndex(name, "/secrets/")
	_, err = sm.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
		Parent:   name[:i],
		SecretId: name[i+len("/secrets/"):],
		Secret: &secretmanagerpb.Secret{
			Replication: &secretmanagerpb.Replication{
				Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
			},
			Labels: map[string]string{"app": "chat-offboard"},
		},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("creating secret %s: %w", name, err)
	}
	if err == nil {
		fmt.Fprintf(stdout, "Created secret %s.\n", name)
	}
	return nil
}

// addVersion stores payload as a new version, with its CRC32C so that Secret
// Manager verifies it, and returns the version name.
func addVersion(ctx context.Context, sm *secretmanager.Client, secret string, payload []byte) (string, error) {
	crc := int64(crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	v, err := sm.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  secret,
		Payload: &secretmanagerpb.SecretPayload{Data: payload, DataCrc32C: &crc},
	})
	if err != nil {
		return "", fmt.Errorf("adding a version to %s: %w", secret, err)
	}
	return v.GetName(), nil
}
