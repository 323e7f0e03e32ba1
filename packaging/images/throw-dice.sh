#!/bin/sh
# kodekloud/throw-dice as jobvisor runs it (the built-in alias in src/images.rs embeds this
# file; the package installs it as share/jobvisor/images/throw-dice.sh). Like the image
# of the Kubernetes Job tutorials: throws a die, prints the number (1 to 6), and succeeds
# only on a six, so a Job with a backoffLimit runs pods until one throws a six.
# Keep the code to one line: it is shown as the pod's host command line.
n=$(shuf -i 1-6 -n 1) && echo "$n" && [ "$n" -eq 6 ]
