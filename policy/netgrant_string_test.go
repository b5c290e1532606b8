package policy

import "testing"

func TestNetGrantString(t *testing.T) {
	tests := []struct {
		name string
		g    NetGrant
		want string
	}{
		{name: "host", g: NetGrant{Host: "github.com"}, want: "github.com"},
		{name: "ports", g: NetGrant{Host: "127.0.0.1", Ports: []int{8080, 8443}}, want: "127.0.0.1:8080,8443"},
		{name: "methods", g: NetGrant{Host: "*.example.com", Ports: []int{443}, Methods: []string{"GET", "HEAD"}}, want: "*.example.com:443 GET,HEAD"},
		{name: "registry", g: NetGrant{Registry: "go"}, want: "registry go"},
		{name: "any", g: NetGrant{Any: true, Name: "uploads"}, want: "any (uploads)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
