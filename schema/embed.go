// Package schema holds the JSON Schemas (draft 2020-12) of chat-offboard's
// wire contract: the removal request (the data of a message on the request
// topic) and the result event data (on the result topic). Integrators
// validate against the .json files in this directory; Go code can use the
// embedded copies below.
//
// The request schema agrees with the Go validator (package request) on the
// corpus in testdata/requests, except for the divergences listed in
// testdata/requests/divergent.jsonl, which JSON Schema cannot express.
package schema

import _ "embed"

// Request is request.schema.json.
//
//go:embed request.schema.json
var Request []byte

// Result is result.schema.json.
//
//go:embed result.schema.json
var Result []byte

// RequestID and ResultID are the $id of the two schemas.
const (
	RequestID = "https://github.com/chat-offboard/chat-offboard/raw/main/schema/request.schema.json"
	ResultID  = "https://github.com/chat-offboard/chat-offboard/raw/main/schema/result.schema.json"
)
