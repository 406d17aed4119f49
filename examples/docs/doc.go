// Package docs holds the checks that keep the repository's Markdown true to
// the code: docs_test.go compares every block marked as a snippet with the
// source region or file it copies, requires every Go block of the README to
// be one, and checks that every kstream identifier the pages name exists.
// readme_test.go holds the README's Go code, compiled and vetted with the
// module.
package docs
