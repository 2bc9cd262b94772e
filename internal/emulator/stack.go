package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Defaults of StartAll.
const (
	// StackClientID is the OAuth client id registered by StartAll.
	StackClientID = "chat-offboard-emulator.apps.googleusercontent.com"
	// StackProject is the project of the secret created by StartAll.
	StackProject = "emulator-project"
	// StackSecretID is the id of the secret created by StartAll.
	StackSecretID = "chat-offboard-token"
)

// StackScopes are the scopes of the refresh token that StartAll stores in
// Secret Manager. Treat it as read-only.
var StackScopes = []string{
	ScopeChatMemberships,
	ScopeChatMembershipsApp,
	ScopeChatAdminMemberships,
	ScopeChatAdminSpacesReadonly,
	ScopeAdminDirectoryUserReadonly,
	ScopeAdminDirectoryGroupReadonly,
}

// Stack is the four emulations wired together by StartAll. Its fields are
// set once by StartAll and must not be modified; the emulations themselves
// are safe for concurrent use.
type Stack struct {
	// OAuth is the token and authorization endpoint; ClientID is registered.
	OAuth *OAuth
	// Secrets is the Secret Manager holding SecretName.
	Secrets *SecretManager
	// Chat is the Chat API, checking tokens with OAuth.
	Chat *Chat
	// Directory is the Admin SDK Directory API, checking tokens with OAuth.
	Directory *Directory
	// ClientID and ClientSecret are the registered OAuth client.
	ClientID, ClientSecret string
	// RefreshToken is the first admin's refresh token, with StackScopes.
	RefreshToken string
	// Project is the project of the secret.
	Project string
	// SecretName is "projects/P/secrets/S"; its version 1 (also "latest")
	// holds AuthorizedUserJSON for ClientID, ClientSecret, RefreshToken and
	// the OAuth token URL.
	SecretName string
}

// StartAll starts OAuth, Secret Manager, Chat (with opts) and Directory
// emulations for ws. The OAuth consent user is the first admin of ws, who
// also owns RefreshToken. ws must have at least one admin.
func StartAll(ws Workspace, opts ChatOptions) (*Stack, error) {
	if err := ws.Validate(); err != nil {
		return nil, fmt.Errorf("emulator: invalid workspace: %w", err)
	}
	if len(ws.Admins) == 0 {
		return nil, errors.New("emulator: StartAll needs a workspace with at least one admin")
	}
	sm, err := NewSecretManager()
	if err != nil {
		return nil, fmt.Errorf("emulator: start secret manager: %w", err)
	}
	var b [18]byte
	_, _ = rand.Read(b[:])
	st := &Stack{
		Secrets:      sm,
		OAuth:        NewOAuth(OAuthOptions{ConsentUser: ws.Admins[0]}),
		ClientID:     StackClientID,
		ClientSecret: "GOCSPX-emu-" + base64.RawURLEncoding.EncodeToString(b[:]),
		Project:      StackProject,
	}
	st.OAuth.RegisterClient(st.ClientID, st.ClientSecret)
	st.RefreshToken = st.OAuth.IssueRefreshToken(st.ClientID, ws.Admins[0], StackScopes)
	v := sm.AddVersion(st.Project, StackSecretID, AuthorizedUserJSON(st.ClientID, st.ClientSecret, st.RefreshToken, st.OAuth.TokenURL()))
	st.SecretName = v[:len(v)-len("/versions/1")]
	st.Chat = NewChat(ws, st.OAuth, opts)
	st.Directory = NewDirectory(ws, st.OAuth)
	return st, nil
}

// Close stops all emulations. It is idempotent.
func (s *Stack) Close() {
	if s.Chat != nil {
		s.Chat.Close()
	}
	if s.Directory != nil {
		s.Directory.Close()
	}
	if s.Secrets != nil {
		s.Secrets.Close()
	}
	if s.OAuth != nil {
		s.OAuth.Close()
	}
}

// AuthorizedUserJSON returns the JSON of an authorized_user credential, as
// gcloud writes it and as the function reads it from Secret Manager.
func AuthorizedUserJSON(clientID, secret, refresh, tokenURI string) []byte {
	b, _ := json.Marshal(struct {
		Type         string `json:"type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		RefreshToken string `json:"refresh_token"`
		TokenURI     string `json:"token_uri"`
	}{"authorized_user", clientID, secret, refresh, tokenURI})
	return b
}
