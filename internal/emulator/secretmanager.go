package emulator

import (
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SecretStats are the counters of a SecretManager emulation.
type SecretStats struct {
	// Accesses counts AccessSecretVersion calls, whatever their outcome.
	Accesses int64
	// Adds counts successful AddSecretVersion calls and AddVersion helper
	// calls.
	Adds int64
	// Faulted counts calls answered by a Fault.
	Faulted int64
}

type secretVersion struct {
	num     int
	data    []byte
	crc     uint32
	state   secretmanagerpb.SecretVersion_State
	created *timestamppb.Timestamp
	client  bool // client specified the checksum
}

type secretState struct {
	secret   *secretmanagerpb.Secret
	versions []*secretVersion // index = num-1
	omitCRC  bool
}

// SecretManager emulates the Secret Manager v1 gRPC service (plaintext, no
// authentication) on 127.0.0.1. It implements AccessSecretVersion,
// AddSecretVersion, CreateSecret, GetSecret, GetSecretVersion,
// DisableSecretVersion and EnableSecretVersion; other methods answer
// UNIMPLEMENTED. All methods are safe for concurrent use, also while the
// server handles requests.
//
// Names are strict: projects/{project}/secrets/{secret}[/versions/{n|latest}]
// with project and secret of [A-Za-z0-9_-]; anything else is
// INVALID_ARGUMENT. "latest" is the most recently created version, as
// Google documents the alias, whatever its state: AccessSecretVersion of a
// disabled one is FAILED_PRECONDITION even when an older version is enabled.
//
// Connect with:
//
//	secretmanager.NewClient(ctx, option.WithEndpoint(sm.Addr()), option.WithoutAuthentication(),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
type SecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	srv      *grpc.Server
	addr     string
	faults   faultSet
	closeMu  sync.Once
	corrupt  atomic.Bool
	omitAll  atomic.Bool
	accesses atomic.Int64
	adds     atomic.Int64
	faulted  atomic.Int64

	mu      sync.RWMutex
	secrets map[string]*secretState // "projects/P/secrets/S"
}

// NewSecretManager starts a Secret Manager emulation on 127.0.0.1 with an
// ephemeral port.
func NewSecretManager() (*SecretManager, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: secret manager listen: %w", err)
	}
	sm := &SecretManager{addr: l.Addr().String(), secrets: map[string]*secretState{}}
	sm.srv = grpc.NewServer(grpc.UnaryInterceptor(sm.intercept))
	secretmanagerpb.RegisterSecretManagerServiceServer(sm.srv, sm)
	go func() { _ = sm.srv.Serve(l) }()
	return sm, nil
}

// Addr returns "127.0.0.1:PORT", for option.WithEndpoint.
func (sm *SecretManager) Addr() string { return sm.addr }

// Close stops the server, aborting in-flight calls. It is idempotent.
func (sm *SecretManager) Close() { sm.closeMu.Do(sm.srv.Stop) }

// SetCorruptChecksum makes AccessSecretVersion answer a wrong DataCrc32C.
func (sm *SecretManager) SetCorruptChecksum(on bool) { sm.corrupt.Store(on) }

// SetOmitChecksum makes AccessSecretVersion omit DataCrc32C for all
// secrets.
func (sm *SecretManager) SetOmitChecksum(on bool) { sm.omitAll.Store(on) }

// SetSecretOmitChecksum makes AccessSecretVersion omit DataCrc32C for one
// secret ("projects/P/secrets/S"); it reports whether the secret exists.
func (sm *SecretManager) SetSecretOmitChecksum(secret string, on bool) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.secrets[secret]
	if s != nil {
		s.omitCRC = on
	}
	return s != nil
}

// InjectFault adds a fault. Status maps to a gRPC code: 503 and 502 Unavailable,
// 500 Internal, 429 ResourceExhausted (with a RetryInfo detail when
// RetryAfter is set), 403 PermissionDenied, 404 NotFound, 400
// InvalidArgument, 401 Unauthenticated, 504 DeadlineExceeded, others
// Unknown. Drop answers Unavailable. Method names are "secrets.access",
// "secrets.add", "secrets.create", "secrets.get", "secrets.getVersion",
// "secrets.disable", "secrets.enable", or "" for any. With AfterApply the
// call is served first (a write applies) and then answered with the fault.
func (sm *SecretManager) InjectFault(f Fault) { sm.faults.add(f) }

// ClearFaults removes all injected faults.
func (sm *SecretManager) ClearFaults() { sm.faults.clear() }

// Stats returns the current counters.
func (sm *SecretManager) Stats() SecretStats {
	return SecretStats{Accesses: sm.accesses.Load(), Adds: sm.adds.Load(), Faulted: sm.faulted.Load()}
}

// AddVersion adds an enabled version holding a copy of data to secret
// project/secret, creating the secret if needed, and returns the version
// name "projects/P/secrets/S/versions/N".
func (sm *SecretManager) AddVersion(project, secret string, data []byte) string {
	name := "projects/" + project + "/secrets/" + secret
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.secrets[name]
	if s == nil {
		s = &secretState{secret: &secretmanagerpb.Secret{
			Name:        name,
			CreateTime:  timestamppb.Now(),
			Replication: &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}},
		}}
		sm.secrets[name] = s
	}
	sm.adds.Add(1)
	return sm.addLocked(s, data, false)
}

// SetVersionEnabled enables or disables version
// "projects/P/secrets/S/versions/N" (not "latest", as the real service
// refuses the alias for state changes), as EnableSecretVersion and
// DisableSecretVersion do; it fails if the version does not exist.
func (sm *SecretManager) SetVersionEnabled(version string, enabled bool) error {
	st := secretmanagerpb.SecretVersion_DISABLED
	if enabled {
		st = secretmanagerpb.SecretVersion_ENABLED
	}
	if _, err := sm.setState(version, st); err != nil {
		return fmt.Errorf("emulator: %s: %w", version, err)
	}
	return nil
}

func (sm *SecretManager) addLocked(s *secretState, data []byte, client bool) string {
	v := &secretVersion{
		num:     len(s.versions) + 1,
		data:    append([]byte(nil), data...),
		crc:     crc32.Checksum(data, castagnoli),
		state:   secretmanagerpb.SecretVersion_ENABLED,
		created: timestamppb.Now(),
		client:  client,
	}
	s.versions = append(s.versions, v)
	return s.secret.Name + "/versions/" + strconv.Itoa(v.num)
}

var secretMethods = map[string]string{
	"AccessSecretVersion":  "secrets.access",
	"AddSecretVersion":     "secrets.add",
	"CreateSecret":         "secrets.create",
	"GetSecret":            "secrets.get",
	"GetSecretVersion":     "secrets.getVersion",
	"DisableSecretVersion": "secrets.disable",
	"EnableSecretVersion":  "secrets.enable",
}

func (sm *SecretManager) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	short := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	name, ok := secretMethods[short]
	if !ok {
		name = short
	}
	if name == "secrets.access" {
		sm.accesses.Add(1)
	}
	if f, ok := sm.faults.match(name); ok {
		if !sleepCtx(ctx, f.Latency) {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		if f.Drop || f.Status != 0 {
			if f.AfterApply {
				// Served (a version added, a secret created), then the
				// answer is lost.
				_, _ = handler(ctx, req)
			}
			sm.faulted.Add(1)
			return nil, faultStatus(f)
		}
	}
	return handler(ctx, req)
}

// grpcCodes maps a Fault's HTTP status to the gRPC code Google's gRPC
// services answer with; any other status is codes.Unknown.
var grpcCodes = map[int]codes.Code{
	400: codes.InvalidArgument,
	401: codes.Unauthenticated,
	403: codes.PermissionDenied,
	404: codes.NotFound,
	429: codes.ResourceExhausted,
	500: codes.Internal,
	502: codes.Unavailable,
	503: codes.Unavailable,
	504: codes.DeadlineExceeded,
}

func faultStatus(f Fault) error {
	if f.Drop {
		return status.Error(codes.Unavailable, "injected fault: connection dropped")
	}
	c, ok := grpcCodes[f.Status]
	if !ok {
		c = codes.Unknown
	}
	st := status.New(c, "injected fault")
	if f.RetryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(retryAfterSeconds(f.RetryAfter)) * time.Second)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// parseSecretName checks "projects/P/secrets/S"; it returns the canonical
// secret name.
func parseSecretName(n string) (string, bool) {
	p := strings.Split(n, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "secrets" || !validID(p[1]) || !validID(p[3]) {
		return "", false
	}
	return n, true
}

// parseVersionName checks "projects/P/secrets/S/versions/V" with V a
// positive integer or "latest" (0).
func parseVersionName(n string) (secret string, num int, ok bool) {
	p := strings.Split(n, "/")
	if len(p) != 6 || p[4] != "versions" {
		return "", 0, false
	}
	secret, ok = parseSecretName(strings.Join(p[:4], "/"))
	if !ok {
		return "", 0, false
	}
	if p[5] == "latest" {
		return secret, 0, true
	}
	num, err := strconv.Atoi(p[5])
	if err != nil || num < 1 || strconv.Itoa(num) != p[5] {
		return "", 0, false
	}
	return secret, num, true
}

func validID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// versionLocked resolves a version name. allowLatest false rejects the
// alias (as the real service does for state changes).
func (sm *SecretManager) versionLocked(name string, allowLatest bool) (*secretState, *secretVersion, error) {
	secret, num, ok := parseVersionName(name)
	if !ok || (num == 0 && !allowLatest) {
		return nil, nil, status.Errorf(codes.InvalidArgument, "invalid secret version name %q: want projects/*/secrets/*/versions/*", name)
	}
	s := sm.secrets[secret]
	if s == nil {
		return nil, nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secret)
	}
	if num == 0 {
		// "latest is an alias to the most recently created SecretVersion"
		// (AccessSecretVersionRequest.name): the newest whatever its
		// state, so that a disabled newest version is FAILED_PRECONDITION
		// to AccessSecretVersion, not an older enabled one.
		if len(s.versions) == 0 {
			return nil, nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secret)
		}
		return s, s.versions[len(s.versions)-1], nil
	}
	if num > len(s.versions) {
		return nil, nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
	}
	return s, s.versions[num-1], nil
}

func versionProto(s *secretState, v *secretVersion) *secretmanagerpb.SecretVersion {
	return &secretmanagerpb.SecretVersion{
		Name:                           s.secret.Name + "/versions/" + strconv.Itoa(v.num),
		CreateTime:                     v.created,
		State:                          v.state,
		ClientSpecifiedPayloadChecksum: v.client,
	}
}

// AccessSecretVersion implements the gRPC method.
func (sm *SecretManager) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	sm.mu.RLock()
	s, v, err := sm.versionLocked(req.GetName(), true)
	if err != nil {
		sm.mu.RUnlock()
		return nil, err
	}
	if v.state != secretmanagerpb.SecretVersion_ENABLED {
		sm.mu.RUnlock()
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s/versions/%d] is in %s state.", s.secret.Name, v.num, v.state)
	}
	resp := &secretmanagerpb.AccessSecretVersionResponse{
		Name:    s.secret.Name + "/versions/" + strconv.Itoa(v.num),
		Payload: &secretmanagerpb.SecretPayload{Data: append([]byte(nil), v.data...)},
	}
	omit := s.omitCRC
	crc := v.crc
	sm.mu.RUnlock()
	if !omit && !sm.omitAll.Load() {
		if sm.corrupt.Load() {
			crc ^= 0x5a5a5a5a
		}
		c := int64(crc)
		resp.Payload.DataCrc32C = &c
	}
	return resp, nil
}

// AddSecretVersion implements the gRPC method.
func (sm *SecretManager) AddSecretVersion(_ context.Context, req *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	name, ok := parseSecretName(req.GetParent())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "invalid parent %q: want projects/*/secrets/*", req.GetParent())
	}
	p := req.GetPayload()
	if p == nil {
		return nil, status.Error(codes.InvalidArgument, "payload is required")
	}
	if len(p.GetData()) > 64<<10 {
		return nil, status.Error(codes.InvalidArgument, "payload exceeds 64 KiB")
	}
	if p.DataCrc32C != nil && uint64(*p.DataCrc32C) != uint64(crc32.Checksum(p.GetData(), castagnoli)) {
		return nil, status.Error(codes.InvalidArgument, "Checksum mismatch: data_crc32c does not match the payload data.")
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.secrets[name]
	if s == nil {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found.", name)
	}
	sm.addLocked(s, p.GetData(), p.DataCrc32C != nil)
	sm.adds.Add(1)
	return versionProto(s, s.versions[len(s.versions)-1]), nil
}

// CreateSecret implements the gRPC method.
func (sm *SecretManager) CreateSecret(_ context.Context, req *secretmanagerpb.CreateSecretRequest) (*secretmanagerpb.Secret, error) {
	parent := strings.Split(req.GetParent(), "/")
	if len(parent) != 2 || parent[0] != "projects" || !validID(parent[1]) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid parent %q: want projects/*", req.GetParent())
	}
	if !validID(req.GetSecretId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid secret_id %q", req.GetSecretId())
	}
	if req.GetSecret().GetReplication() == nil {
		return nil, status.Error(codes.InvalidArgument, "secret.replication is required")
	}
	name := req.GetParent() + "/secrets/" + req.GetSecretId()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.secrets[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "Secret [%s] already exists.", name)
	}
	sec := &secretmanagerpb.Secret{
		Name:        name,
		Replication: req.GetSecret().GetReplication(),
		CreateTime:  timestamppb.Now(),
		Labels:      req.GetSecret().GetLabels(),
	}
	sm.secrets[name] = &secretState{secret: sec}
	return proto.Clone(sec).(*secretmanagerpb.Secret), nil
}

// GetSecret implements the gRPC method.
func (sm *SecretManager) GetSecret(_ context.Context, req *secretmanagerpb.GetSecretRequest) (*secretmanagerpb.Secret, error) {
	name, ok := parseSecretName(req.GetName())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "invalid secret name %q: want projects/*/secrets/*", req.GetName())
	}
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	s := sm.secrets[name]
	if s == nil {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found.", name)
	}
	return proto.Clone(s.secret).(*secretmanagerpb.Secret), nil
}

// GetSecretVersion implements the gRPC method.
func (sm *SecretManager) GetSecretVersion(_ context.Context, req *secretmanagerpb.GetSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	s, v, err := sm.versionLocked(req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return versionProto(s, v), nil
}

// DisableSecretVersion implements the gRPC method.
func (sm *SecretManager) DisableSecretVersion(_ context.Context, req *secretmanagerpb.DisableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return sm.setState(req.GetName(), secretmanagerpb.SecretVersion_DISABLED)
}

// EnableSecretVersion implements the gRPC method.
func (sm *SecretManager) EnableSecretVersion(_ context.Context, req *secretmanagerpb.EnableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return sm.setState(req.GetName(), secretmanagerpb.SecretVersion_ENABLED)
}

func (sm *SecretManager) setState(name string, st secretmanagerpb.SecretVersion_State) (*secretmanagerpb.SecretVersion, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s, v, err := sm.versionLocked(name, false)
	if err != nil {
		return nil, err
	}
	v.state = st
	return versionProto(s, v), nil
}
