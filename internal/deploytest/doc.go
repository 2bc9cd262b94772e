// Package deploytest tests deploy.sh, the repository's deployment script.
//
// Its tests run `bash ../../deploy.sh` with a fake gcloud first on PATH: the
// test binary itself, which records every call and answers describes, lists
// and IAM policies from a state file, so that a run can be checked against a
// fresh project, an already deployed one, or anything in between. The package
// has no non-test code besides this comment.
package deploytest
