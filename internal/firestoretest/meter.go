package firestoretest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Meter observes the RPCs of a Firestore client on the wire: how many
// document writes its successful commits carry (what Firestore bills as
// writes: each create, update, merge or delete of one document, in a
// transaction or not; a create refused because the document exists
// writes nothing), how many RPCs it makes, and, through Observe, how long each takes.
// Build the client with [Meter.ClientOptions]. Its counters are safe for concurrent
// use.
type Meter struct {
	// Observe, when set before the client is built, is called after each
	// RPC with the RPC's context (the caller's), its method, its duration
	// (for a stream: from its start to its last message) and the document
	// writes it carried. It may be called from many goroutines at once.
	Observe func(ctx context.Context, method string, d time.Duration, writes int)

	writes, rpcs atomic.Int64
}

// Writes is the number of document writes committed so far.
func (m *Meter) Writes() int64 { return m.writes.Load() }

// RPCs is the number of RPCs made so far, streams included.
func (m *Meter) RPCs() int64 { return m.rpcs.Load() }

// ClientOptions are the options of a Firestore client that talks to the
// emulator on host through a connection of its own, with the meter
// installed on its unary and streaming RPCs. They hold even when
// FIRESTORE_EMULATOR_HOST is set (the client library then dials the emulator
// itself, ignoring dial options, but keeps a connection given to it). Call
// closeConn after closing the client.
func (m *Meter) ClientOptions(host string) (opts []option.ClientOption, closeConn func() error, err error) {
	conn, err := grpc.NewClient(host,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}),
		grpc.WithChainUnaryInterceptor(m.unary),
		grpc.WithChainStreamInterceptor(m.stream))
	if err != nil {
		return nil, nil, fmt.Errorf("firestoretest: dialing the emulator at %s: %w", host, err)
	}
	return []option.ClientOption{option.WithGRPCConn(conn), option.WithoutAuthentication(), option.WithTelemetryDisabled()}, conn.Close, nil
}

func (m *Meter) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	writes := 0
	switch r := req.(type) {
	case *firestorepb.CommitRequest:
		if err == nil {
			writes = len(r.GetWrites())
		}
	case *firestorepb.BatchWriteRequest:
		if resp, ok := reply.(*firestorepb.BatchWriteResponse); ok && err == nil {
			for _, st := range resp.GetStatus() {
				if st.GetCode() == 0 {
					writes++
				}
			}
		}
	}
	m.done(ctx, method, time.Since(start), writes)
	return err
}

func (m *Meter) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		m.done(ctx, method, time.Since(start), 0)
		return s, err
	}
	return &meteredStream{ClientStream: s, m: m, ctx: ctx, method: method, start: start}, nil
}

func (m *Meter) done(ctx context.Context, method string, d time.Duration, writes int) {
	m.rpcs.Add(1)
	m.writes.Add(int64(writes))
	if m.Observe != nil {
		m.Observe(ctx, method, d, writes)
	}
}

// meteredStream reports its stream once, when it ends.
type meteredStream struct {
	grpc.ClientStream
	m      *Meter
	ctx    context.Context
	method string
	start  time.Time
	ended  atomic.Bool
}

func (s *meteredStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err != nil && s.ended.CompareAndSwap(false, true) {
		s.m.done(s.ctx, s.method, time.Since(s.start), 0)
	}
	return err
}
