// Package audit writes and verifies the signed, tamper-evident log of what
// every command did.
package audit
