package emulator_test

import (
	"testing"

	"github.com/chat-offboard/chat-offboard/internal/emulator"
)

// BenchmarkChatGet drives members.get through the real client, in
// parallel, to show the emulation's throughput.
func BenchmarkChatGet(b *testing.B) {
	st, err := emulator.StartAll(emulator.Default(), emulator.ChatOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := adminChat(b, st)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Spaces.Members.Get("spaces/ENG/members/102").Do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
