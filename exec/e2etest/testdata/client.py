# Authenticates to the URL in argv[1] with the bearer token in $TOKEN,
# through the egress proxy in $HTTP_PROXY. The proxy is named explicitly:
# NO_PROXY lists 127.0.0.1, which inside the sandbox is the sandbox's own
# loopback, while the grant names the host's.
import http.client
import os
import sys
import urllib.parse

proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=20)
conn.request("GET", sys.argv[1], headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
resp = conn.getresponse()
print(resp.status, resp.read().decode())
