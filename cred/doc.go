// Package cred issues short-lived credentials from providers, revokes them,
// and redacts their values from output.
package cred
