// Package browsertest drives a headless Chromium over the Chrome DevTools
// Protocol for tests: start the browser, open pages, navigate, evaluate
// JavaScript and wait for conditions, and collect the errors the pages
// report (uncaught exceptions, security and Content Security Policy
// violations).
//
// It is a normal package so that tests in several packages can share it,
// but it is meant for tests only: nothing outside _test.go files imports
// it. Tests using it are skipped when Chromium is not installed at
// /usr/bin/chromium (scripts/setup.sh test installs it).
package browsertest
