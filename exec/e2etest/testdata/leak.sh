#!/bin/bash
# Prints $TOKEN in every way an agent might try to read it back.
echo "plain: $TOKEN"
printenv
echo "$TOKEN" | base64
printf %s "$TOKEN" | xxd -p
python3 -c 'import json,os;print(json.dumps(os.environ["TOKEN"]))'
# One byte per write, on stdout and on stderr.
python3 -c '
import os
for fd in (1, 2):
    for b in os.environ["TOKEN"].encode():
        os.write(fd, bytes([b]))
    os.write(fd, b"\n")
'
echo "stderr: $TOKEN" >&2
