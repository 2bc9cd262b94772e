package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/firestoretest"
	"github.com/chat-offboard/chat-offboard/ledger"
)

// ledgers maps a test to the ledger store it asked for with onFirestore;
// other tests get an in-process ledger.Memory.
var ledgers sync.Map // testing.TB -> ledger.Store

// onFirestore makes the envs that t builds keep their ledger in the real
// Firestore emulator, in a project of their own.
func onFirestore(t *testing.T) { onMeteredFirestore(t) }

// onMeteredFirestore is onFirestore, and returns the meter of the ledger's
// Firestore client: the document writes it commits, counted on the wire.
func onMeteredFirestore(t *testing.T) *firestoretest.Meter {
	t.Helper()
	_, project := firestoretest.Client(t, "engine")
	m := &firestoretest.Meter{}
	opts, closeConn, err := m.ClientOptions(firestoretest.Emulator(t))
	if err != nil {
		t.Fatal(err)
	}
	store, err := ledger.NewFirestore(context.Background(), project, ledger.DefaultDatabase, opts...)
	if err != nil {
		closeConn()
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(); closeConn() })
	ledgers.Store(t, ledger.Store(store))
	return m
}

// ledgerFor is the store t asked for, or nil.
func ledgerFor(t testing.TB) ledger.Store {
	if s, ok := ledgers.Load(t); ok {
		return s.(ledger.Store)
	}
	return nil
}
