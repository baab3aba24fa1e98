# The node is host-global (fixed ports, the otpilotcni0 bridge, its containerd): one user at a
# time. A script that brings the node up re-executes itself under flock, so a second run waits
# for the first instead of tearing its node down. `flock -o` keeps the lock's descriptor out of
# the script and its daemons (kubelet, containerd): a daemon that outlives a run cannot hold it.
#   node_lock_reexec /abs/path/of/the/script "$@"
node_lock_reexec() {
  [ -n "${OTPILOT_NODE_LOCK_HELD:-}" ] && return 0
  local lock=${OTPILOT_NODE_LOCK:-/run/otpilot-node.lock}
  if ! flock -n "$lock" true; then
    printf 'waiting for the node: another run holds %s\n' "$lock" >&2
  fi
  OTPILOT_NODE_LOCK_HELD=1 exec flock -o "$lock" "$@"
}
