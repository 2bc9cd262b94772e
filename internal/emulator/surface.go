// The REST surface of the emulations, for the test that holds it against
// Google's discovery documents (discovery_test.go).

package emulator

import (
	"maps"
	"slices"
	"strings"
)

// SurfaceMethod is one REST method an emulation serves.
type SurfaceMethod struct {
	// Document is the method's discovery document, relative to the
	// google.golang.org/api module: "chat/v1/chat-api.json",
	// "admin/directory/v1/admin-api.json" or
	// "admin/reports/v1/admin-api.json".
	Document string
	// ID is the method's id in that document, such as
	// "chat.spaces.members.delete".
	ID string
	// Params are the query parameters the emulation takes for the method,
	// the standard ones included: the very tables its router checks each
	// request against (any other parameter is 400), sorted.
	Params []string
}

// Surface lists the REST methods the Chat, Directory and Reports
// emulations serve, each with the query parameters it takes. Every other
// method of their APIs is answered 404 (URL not found). It reads only
// package-level tables and is safe for concurrent use.
func Surface() []SurfaceMethod {
	var out []SurfaceMethod
	for m := mDelete; m < nMethods; m++ {
		params := maps.Clone(standardParams)
		maps.Copy(params, methodParams[m])
		out = append(out, SurfaceMethod{Document: "chat/v1/chat-api.json",
			ID: "chat.spaces." + strings.TrimPrefix(methodNames[m], "spaces."), Params: slices.Sorted(maps.Keys(params))})
	}
	list := maps.Clone(directoryParams)
	maps.Copy(list, listParams)
	const directoryDoc = "admin/directory/v1/admin-api.json"
	out = append(out,
		SurfaceMethod{Document: directoryDoc, ID: "directory.users.get", Params: slices.Sorted(maps.Keys(directoryParams))},
		SurfaceMethod{Document: directoryDoc, ID: "directory.users.list", Params: slices.Sorted(maps.Keys(list))},
		SurfaceMethod{Document: directoryDoc, ID: "directory.groups.list", Params: slices.Sorted(maps.Keys(groupsListParams))},
		SurfaceMethod{Document: "admin/reports/v1/admin-api.json", ID: "reports.activities.list", Params: slices.Sorted(maps.Keys(reportsParams))},
	)
	return out
}
