#!/bin/sh
# docker.io/library/bash's docker-entrypoint.sh as jobvisor runs it (the built-in `bash`
# alias in src/images.rs embeds this file; the package installs it as
# share/jobvisor/images/bash-entrypoint.sh). As the image's own script does: with no
# arguments, or a first argument that is an option (`-c …`), run bash with them; otherwise
# run the arguments as a command. The image's cmd is `bash`, so the container runs bash.
# Keep the code to one line: it is shown as the pod's host command line.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then exec bash "$@"; fi; exec "$@"
