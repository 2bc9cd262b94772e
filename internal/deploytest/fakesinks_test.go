package deploytest

import (
	"regexp"
	"strings"
)

// fakeSink is an organization's log sink.
type fakeSink struct {
	Destination     string `json:"destination"`
	Filter          string `json:"filter"`
	Disabled        bool   `json:"disabled,omitempty"`
	IncludeChildren bool   `json:"includeChildren,omitempty"`
	WriterIdentity  string `json:"writerIdentity"`
}

// fakeOrgID is what Cloud Resource Manager accepts as an organization id.
var fakeOrgID = regexp.MustCompile(`^[1-9][0-9]*$`)

// fakeSinkWriter is the writer identity Cloud Logging gives the sinks of
// organization org: a Google-managed service account of the organization.
func fakeSinkWriter(org string) string {
	return "serviceAccount:service-org-" + org + "@gcp-sa-logging.iam.gserviceaccount.com"
}

// sinks answers `logging sinks describe/create/update NAME [DESTINATION]`
// for organization sinks. Like gcloud, it refuses --project with
// --organization (they are one mutually exclusive group), and like Cloud
// Logging, a Pub/Sub destination that is not an existing topic of the form
// pubsub.googleapis.com/projects/P/topics/T, and a create of a sink that
// exists. Sinks of projects or folders are not modelled: deploy.sh makes
// none.
func (f *fake) sinks(verb, name string, rest []string) int {
	org, hasOrg := f.c.flags["organization"]
	if _, p := f.c.flags["project"]; p && hasOrg {
		return f.fail("argument --organization: At most one of --billing-account | --folder | --organization | --project can be specified.")
	}
	if !hasOrg {
		return f.unsupported()
	}
	if !fakeOrgID.MatchString(org) {
		return f.fail("INVALID_ARGUMENT: organizations/%s is not an organization", org)
	}
	key := "organizations/" + org + "/sinks/" + name
	s := f.st.Sinks[key]
	switch {
	case verb == "describe" && len(rest) == 0:
		if s == nil {
			return f.notFound(key)
		}
		disabled := ""
		if s.Disabled {
			disabled = "True"
		}
		return f.value(map[string]string{"name": name, "destination": s.Destination, "filter": s.Filter,
			"disabled": disabled, "writerIdentity": s.WriterIdentity})
	case verb == "create" && len(rest) == 1:
		if s != nil {
			return f.fail("ALREADY_EXISTS: Sink %s already exists", name)
		}
		if !f.topicDestination(rest[0]) {
			return 1
		}
		f.st.Sinks[key] = &fakeSink{Destination: rest[0], Filter: f.c.flags["log-filter"],
			Disabled: f.c.flags["disabled"] == "true", IncludeChildren: f.c.flags["include-children"] == "true",
			WriterIdentity: fakeSinkWriter(org)}
		f.dirty = true
		return 0
	case verb == "update" && len(rest) <= 1:
		if s == nil {
			return f.notFound(key)
		}
		if len(rest) == 1 {
			if !f.topicDestination(rest[0]) {
				return 1
			}
			s.Destination = rest[0]
		}
		if v, ok := f.c.flags["log-filter"]; ok {
			s.Filter = v
		}
		if f.c.flags["no-disabled"] == "true" {
			s.Disabled = false
		}
		if f.c.flags["include-children"] == "true" {
			s.IncludeChildren = true
		}
		f.dirty = true
		return 0
	}
	return f.unsupported()
}

// topicDestination checks a sink's Pub/Sub destination.
func (f *fake) topicDestination(dest string) bool {
	p := strings.Split(strings.TrimPrefix(dest, "pubsub.googleapis.com/"), "/")
	if !strings.HasPrefix(dest, "pubsub.googleapis.com/") || len(p) != 4 || p[0] != "projects" || p[2] != "topics" {
		f.fail("INVALID_ARGUMENT: %s is not a Pub/Sub topic destination", dest)
		return false
	}
	if !f.st.Topics[p[3]] {
		f.fail("NOT_FOUND: destination topic %s does not exist", dest)
		return false
	}
	return true
}
