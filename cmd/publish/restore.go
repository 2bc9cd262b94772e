package main

import (
	"flag"

	"github.com/chat-offboard/chat-offboard/contract"
	"github.com/chat-offboard/chat-offboard/request"
)

// restoreFlags is the restore target (issue 14): --restore REQUEST_ID
// publishes {"restore": REQUEST_ID}, which undoes what that request
// removed. With --wait the CLI follows the restore's planned pages and
// its children's restored, already_member and failed results to the end,
// as it follows a sweep.
type restoreFlags struct {
	restore string
	force   bool
}

// addRestoreFlags registers --restore and --force.
func (r *restoreFlags) addRestoreFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.restore, "restore", "", "target: undo what the request `REQUEST_ID` removed (every membership back with its role; hand-offs stay)")
	fs.BoolVar(&r.force, "force", false, "with --restore: also add back people a later request removed again, or whom the Directory shows suspended, archived or deleted")
}

// describeRestore is the target of a restore, for tables.
func describeRestore(v *request.Valid) string {
	if v.Kind == request.KindRestoreSpace {
		return v.SpaceNames[0] + ", restore of " + v.Restore
	}
	return "restore of " + v.Restore
}

// wouldRestore explains a restore's dry run.
func wouldRestore(r *contract.Result) []string {
	switch {
	case r.WouldRestore == nil:
		return nil
	case *r.WouldRestore:
		return []string{"would restore"}
	}
	return []string{"would not restore: already a member"}
}
