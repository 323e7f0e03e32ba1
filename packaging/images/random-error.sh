#!/bin/sh
# kodekloud/random-error as jobvisor runs it (the built-in alias in src/images.rs embeds this
# file; the package installs it as share/jobvisor/images/random-error.sh). Like the
# image of the Kubernetes tutorials: fails at random, half of the time, saying so.
# Keep the code to one line: it is shown as the pod's host command line.
if [ "$(shuf -i 1-2 -n 1)" -eq 1 ]; then echo "Error: random failure" >&2; exit 1; fi; echo "Success"
