#!/usr/bin/env bash
# Stop the SLURM daemons that tests/slurm/start.sh started, by the PIDs in their PID files: slurmd,
# slurmctld, and munged when start.sh started it; then remove the /etc/slurm links start.sh made.
# Idempotent (nothing running: nothing to do) and bounded: SIGTERM, up to ${TOYMODELS_SLURM_WAIT:-20} s,
# then SIGKILL. Exits non-zero if a daemon survives.
set -uo pipefail

DIR=${TOYMODELS_SLURM_DIR:-/tmp/toymodels-slurm}
WAIT=${TOYMODELS_SLURM_WAIT:-20}
status=0

say() { printf 'slurm/stop.sh: %s\n' "$*" >&2; }

stop_pid_file() {  # stop_pid_file NAME PIDFILE
  local name=$1 file=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$file"; return 0; fi
  kill -TERM "$pid" 2>/dev/null
  local deadline=$((SECONDS + WAIT))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) ignored SIGTERM for ${WAIT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) is still running"
    status=1
  else
    say "stopped $name (pid $pid)"
    rm -f "$file"
  fi
}

# Jobs first (their processes are children of slurmstepd, which slurmd's stop leaves running).
if [ -s "$DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2>/dev/null; then
  SLURM_CONF=$DIR/slurm.conf timeout -k 2 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [ -n "$(SLURM_CONF=$DIR/slurm.conf timeout -k 2 5 squeue -h -t R,CG -o %i 2>/dev/null)" ] \
        && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
fi
stop_pid_file slurmd "$DIR/run/slurmd.pid"
stop_pid_file slurmctld "$DIR/run/slurmctld.pid"
if [ -e "$DIR/run/munged.ours" ]; then
  stop_pid_file munged /run/munge/munged.pid
  [ "$status" = 0 ] && rm -f "$DIR/run/munged.ours"
fi
# The /etc/slurm links that start.sh made (only ours: a symlink into $DIR).
for f in slurm.conf gres.conf; do
  if [ -L "/etc/slurm/$f" ] && [ "$(readlink "/etc/slurm/$f")" = "$DIR/$f" ]; then rm -f "/etc/slurm/$f"; fi
done
exit "$status"
