// Package egress runs the network proxy that gives a sandboxed command
// exactly the destinations its grants name, and nothing else.
//
// The proxy is not part of the sandbox: it runs in agentexec's own process,
// in the host's network namespace, outside any container. Start creates a
// fresh network namespace that holds only a loopback interface and one
// listening socket, 127.0.0.1:PORT, created from inside that namespace; the
// sandbox joins the namespace (sandbox.Spec.NetNS) and the proxy serves the
// socket from the host side. A program inside that honours HTTP_PROXY and
// friends reaches the proxy; a program that ignores them finds no route, no
// resolver and no other interface, so it reaches nothing.
//
// The proxy speaks HTTP/1.1 forward proxying: CONNECT tunnels (for HTTPS and
// other TLS) and absolute-form plain-HTTP requests. For every attempt it
//
//   - matches the requested host and port (and, for plain HTTP, the method)
//     against the grants;
//   - resolves the name itself and refuses the connection when any resolved
//     address is internal (loopback, private, link-local, CGNAT, cloud
//     metadata, multicast, reserved, ...) and not granted by address;
//   - dials exactly the address it checked, so a second lookup cannot rebind
//     the name;
//   - for CONNECT, reads the TLS ClientHello and requires its server name
//     (SNI) to equal the requested host, which stops domain fronting through
//     a granted front;
//   - records the attempt (destination, verdict, rule, bytes, no payloads)
//     and, when it refuses, writes one "agentexec: network: ..." line naming
//     the grant that would be needed.
//
// The package does not know about policies, sandboxes, credentials or audit
// records; exec converts policy grants into Grant values and the Stats into
// the command's end record. docs/network.md states the threat model.
package egress
