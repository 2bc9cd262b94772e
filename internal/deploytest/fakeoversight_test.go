package deploytest

import (
	"strings"
)

// fakeOversight is what deploy.sh makes for issue 23: Eventarc triggers of
// its own (the approval topic's) and Cloud Scheduler jobs.
type fakeOversight struct {
	// Triggers are the triggers deploy.sh created, by id.
	Triggers map[string]*fakeTrigger `json:"triggers,omitempty"`
	// Jobs are the Cloud Scheduler jobs, by "location/name".
	Jobs map[string]*fakeJob `json:"jobs,omitempty"`
}

// fakeTrigger is an Eventarc trigger on a Pub/Sub topic.
type fakeTrigger struct {
	Topic          string `json:"topic"`
	Service        string `json:"service"` // region/name of the Cloud Run service
	EventFilters   string `json:"eventFilters"`
	ServiceAccount string `json:"serviceAccount"`
}

// fakeJob is a Cloud Scheduler job with a Pub/Sub target.
type fakeJob struct {
	Schedule string `json:"schedule"`
	Topic    string `json:"topic"`
	Body     string `json:"body"`
}

// oversight answers `eventarc triggers create/describe` for the triggers
// deploy.sh creates, and `scheduler jobs describe/create pubsub/update
// pubsub`. Like the services, it needs their APIs, refuses a trigger to a
// service or topic that does not exist, and a create of what exists.
func (f *fake) oversight(p []string) int {
	o := &f.st.Oversight
	if o.Triggers == nil {
		o.Triggers = map[string]*fakeTrigger{}
	}
	if o.Jobs == nil {
		o.Jobs = map[string]*fakeJob{}
	}
	if p[0] == "eventarc" {
		if !f.needAPI("eventarc.googleapis.com") {
			return 1
		}
		return f.trigger(o, p[2], p[3])
	}
	if _, ok := f.begin("cloudscheduler.googleapis.com"); !ok {
		return 1
	}
	verb, name := p[2], p[len(p)-1]
	key := f.c.flags["location"] + "/" + name
	j, exists := o.Jobs[key]
	switch {
	case verb == "describe" && exists:
		return f.value(map[string]string{"schedule": j.Schedule, "pubsubTarget.topicName": j.Topic})
	case verb == "describe":
		return f.notFound(name)
	case len(p) != 5 || p[3] != "pubsub":
		return f.unsupported()
	case verb == "create" && exists:
		return f.alreadyExists(name)
	case verb == "update" && !exists:
		return f.notFound(name)
	}
	topic := f.c.flags["topic"]
	if !f.st.Topics[topic[strings.LastIndex(topic, "/")+1:]] || !strings.HasPrefix(topic, "projects/") {
		return f.fail("INVALID_ARGUMENT: topic %s does not exist", topic)
	}
	o.Jobs[key] = &fakeJob{Schedule: f.c.flags["schedule"], Topic: topic, Body: f.c.flags["message-body"]}
	f.dirty = true
	return 0
}

// trigger answers `eventarc triggers create/describe NAME`.
func (f *fake) trigger(o *fakeOversight, verb, name string) int {
	if verb == "describe" {
		return f.value(map[string]string{"transport.pubsub.topic": o.Triggers[name].Topic})
	}
	if _, ok := o.Triggers[name]; ok {
		return f.alreadyExists(name)
	}
	service := f.c.flags["destination-run-region"] + "/" + f.c.flags["destination-run-service"]
	if _, ok := f.st.Functions[service]; !ok {
		return f.fail("INVALID_ARGUMENT: no Cloud Run service %s", service)
	}
	topic := f.c.flags["transport-topic"]
	if !f.st.Topics[topic[strings.LastIndex(topic, "/")+1:]] {
		return f.fail("INVALID_ARGUMENT: topic %s does not exist", topic)
	}
	o.Triggers[name] = &fakeTrigger{Topic: topic, Service: service, EventFilters: f.c.flags["event-filters"], ServiceAccount: f.c.flags["service-account"]}
	f.dirty = true
	return 0
}
