#!/bin/sh
# Container entrypoint for an agent whose working directory lives in S3:
# restore it, run the agent, save it -- also when the container is stopped.
#
#   # Dockerfile
#   RUN npm install -g s3-workspace-sync @aws-sdk/client-s3
#   COPY entrypoint.sh /entrypoint.sh
#   ENV S3WS_BUCKET=my-agent-workspaces S3WS_DIR=/workspace
#   ENTRYPOINT ["/entrypoint.sh"]
#   CMD ["node", "agent.js"]
#
#   docker run -e S3WS_PREFIX=users/u1/workspace/ my-agent
#
# 1. `s3-workspace-sync pull` restores the workspace. Its settings come from
#    S3WS_* variables (S3WS_BUCKET, S3WS_PREFIX, S3WS_DIR, S3WS_ENDPOINT...)
#    or a config file, credentials from the SDK's chain (task role, ...). The
#    agent starts only if the pull succeeded (exit code 0).
# 2. The command given as arguments (the agent) runs as a child process.
# 3. On SIGTERM or SIGINT (docker stop, an ECS task stopping, a Kubernetes pod
#    deleted), the signal is forwarded to the agent and the script waits for
#    it to exit.
# 4. `s3-workspace-sync push` saves the workspace, whether the agent ended on
#    its own or was stopped.
#
# Exit code: the push's if the push failed (or the pull's if it failed),
# otherwise the agent's (143 when it was stopped by SIGTERM, as usual).
# Give the container enough time between SIGTERM and SIGKILL for the agent to
# stop and the push to finish (ECS stopTimeout, Kubernetes
# terminationGracePeriodSeconds, docker stop --time).
#
# This script pushes only at the end: work done since the pull is lost if the
# container dies without SIGTERM (OOM kill, host failure). To push changes as
# they happen, run `s3-workspace-sync watch` beside the agent instead of the
# final push: it pulls first, pushes what changed within --max-delay (10 s by
# default), and on SIGTERM pushes everything and exits with that push's code
# (`s3-workspace-sync watch --help`; in code: examples/agent-loop.ts).
#
# POSIX sh (dash, busybox ash, bash). Needs `s3-workspace-sync` on PATH
# (a global install, or node_modules/.bin added to PATH).
set -u

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]   (the agent to run between pull and push)" >&2
  exit 2
fi

child=
stopping=
forward() {
  stopping=$1
  if [ -n "$child" ]; then kill -s "$1" "$child" 2>/dev/null; fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT

s3-workspace-sync pull
pulled=$?
if [ "$pulled" -ne 0 ]; then
  echo "entrypoint: pull failed (exit $pulled); not starting the agent" >&2
  exit "$pulled"
fi
if [ -n "$stopping" ]; then
  # stopped while pulling: nothing ran, nothing to push
  exit 143
fi

"$@" &
child=$!
status=0
wait "$child" || status=$?
# A trapped signal interrupts `wait` (status > 128) while the agent may still
# be shutting down: wait until it has really exited, for its own status.
while kill -0 "$child" 2>/dev/null; do
  status=0
  wait "$child" || status=$?
done
child=

s3-workspace-sync push
pushed=$?
if [ "$pushed" -ne 0 ]; then
  echo "entrypoint: push failed (exit $pushed); the agent exited with $status" >&2
  exit "$pushed"
fi
exit "$status"
