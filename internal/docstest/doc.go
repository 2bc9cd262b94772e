// Package docstest holds tests of the repository's documentation as a whole.
// It has no code of its own.
//
// TestNoReferenceOutsideRepository fails naming every file of the repository
// that sends readers to the shared directory beside the checkout or to the
// design file that lived there: the contract lives in docs/design.md, which
// everyone who clones the repository has.
package docstest
