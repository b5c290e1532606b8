// Package sandbox runs one command in a fresh libcontainer container and
// tears it down afterwards.
package sandbox
