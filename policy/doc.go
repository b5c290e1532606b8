// Package policy loads least-privilege policies, analyses a shell line into
// the simple commands that would run, and decides allow, deny or ask.
package policy
