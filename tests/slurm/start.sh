#!/usr/bin/env bash
# Start a real one-node SLURM (Debian's slurm-wlm 22.05 + munge) on this machine, on loopback only,
# with a fake GPU (GRES gpu:1 backed by /dev/null) so that jobs asking for `--gpus=1` are schedulable
# on a CPU-only machine. For the SLURM test (tests/test_slurm.py) and for trying profiles/slurm by hand.
#
#   bash tests/slurm/start.sh          # installs the packages once, starts munged, slurmctld, slurmd
#   export SLURM_CONF=/tmp/toymodels-slurm/slurm.conf   # what start.sh prints last; sbatch, squeue need it
#   bash tests/slurm/stop.sh           # stops the daemons by their PIDs
#
# Needs root, apt-get and Debian's packages; no systemd (the daemons fork and write PID files).
# Idempotent: daemons already running from an earlier start are left as they are. Every wait is bounded.
# Exit status: 0 up, 1 failed (daemon logs printed), 2 not root / no apt-get, 3 a foreign /etc/slurm config.
# Config, state, logs and PID files live in $TOYMODELS_SLURM_DIR (default /tmp/toymodels-slurm);
# /etc/slurm/{slurm,gres}.conf are symlinks to it while SLURM runs (stop.sh removes them).
set -euo pipefail

DIR=${TOYMODELS_SLURM_DIR:-/tmp/toymodels-slurm}
WAIT=${TOYMODELS_SLURM_WAIT:-60}   # seconds to wait for each daemon
NODE=$(hostname -s)

say() { printf 'slurm/start.sh: %s\n' "$*" >&2; }
die() { say "$*"; for f in "$DIR"/log/*.log; do [ -f "$f" ] && { say "--- $f"; tail -n 20 "$f" >&2; }; done; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${seconds}s waiting for $what"
    sleep 0.5
  done
}

[ "$(id -u)" = 0 ] || { say "needs root"; exit 2; }

# 1. Packages (once; ~15 s). Recommends pull in mailutils and the like: not needed.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { say "apt-get not found: install slurm-wlm and munge by hand"; exit 2; }
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  timeout -k 10 300 apt-get update -qq
  timeout -k 10 300 apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
PATH=/usr/sbin:/usr/bin:$PATH

# 2. Config: one node on 127.0.0.1, one partition `debug`, no accounting database, fake GPU.
mkdir -p "$DIR"/{log,run,ctld,spool}
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MB=$(( MEM_MB - 1024 < 8000 ? MEM_MB - 1024 : 8000 ))   # what SLURM may hand out; jobs ask 0.5-2 GB
cat > "$DIR/slurm.conf.new" <<EOF
# Written by tests/slurm/start.sh: a one-node SLURM on loopback for testing profiles/slurm.
ClusterName=toymodels
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=${TOYMODELS_SLURMCTLD_PORT:-6817}
SlurmdPort=${TOYMODELS_SLURMD_PORT:-6818}
AuthType=auth/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups (no systemd here): track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Cores and memory are consumable: several 1-CPU jobs share the node. Without DefMemPerCPU a job that
# asks no memory gets the whole node and the jobs run one at a time.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
GresTypes=gpu
# No accounting database: sacct cannot answer, so profiles/slurm asks squeue for job states. squeue
# shows a finished job for MinJobAge seconds; the plugin falls back to sacct when MinJobAge is shorter
# than 3x its first status-check delay, so keep it generous (an hour: the test reads each job's record
# with scontrol after the run).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
cat > "$DIR/gres.conf.new" <<EOF
# A fake GPU: SLURM schedules it and sets CUDA_VISIBLE_DEVICES; torch sees no CUDA and the code uses the CPU.
AutoDetect=off
NodeName=$NODE Name=gpu File=/dev/null
EOF
mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
mv "$DIR/gres.conf.new" "$DIR/gres.conf"
export SLURM_CONF=$DIR/slurm.conf
# Clients inside a job need the config at the default place too: the plugin's job step strips every
# SLURM_* variable (SLURM_CONF included) before its nested srun. Link it there unless a real one exists;
# stop.sh removes the links (with a slurm.conf there, every snakemake start with the plugin waits ~9 s).
mkdir -p /etc/slurm
for f in slurm.conf gres.conf; do
  if [ -L "/etc/slurm/$f" ] || [ ! -e "/etc/slurm/$f" ]; then
    ln -sfn "$DIR/$f" "/etc/slurm/$f"
  elif [ "$(readlink -f "/etc/slurm/$f")" != "$DIR/$f" ]; then
    say "/etc/slurm/$f exists and is not ours: this machine has a SLURM of its own; leaving it alone"
    exit 3
  fi
done

# 3. munged (shared by every SLURM daemon and client on the machine; default socket).
if munge -n </dev/null >/dev/null 2>&1; then
  say "munged already running"
else
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    (umask 077 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
    chown munge:munge /etc/munge/munge.key
  fi
  runuser -u munge -- munged
  touch "$DIR/run/munged.ours"   # stop.sh stops munged only when this script started it
  wait_for "$WAIT" munged sh -c 'munge -n </dev/null | unmunge'
fi

# 4. slurmctld, then slurmd; a fresh start (no daemon alive) begins from a clean state.
if ! alive "$DIR/run/slurmctld.pid" && ! alive "$DIR/run/slurmd.pid"; then
  rm -rf "$DIR"/ctld/* "$DIR"/spool/* "$DIR"/log/slurm*.log
fi
if alive "$DIR/run/slurmctld.pid"; then
  say "slurmctld already running (pid $(cat "$DIR/run/slurmctld.pid"))"
else
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start"
fi
wait_for "$WAIT" slurmctld scontrol ping
if alive "$DIR/run/slurmd.pid"; then
  say "slurmd already running (pid $(cat "$DIR/run/slurmd.pid"))"
else
  slurmd -f "$SLURM_CONF" -N "$NODE" || die "slurmd did not start"
fi
node_ready() { sinfo -h -N -n "$NODE" -o %T | grep -qE '^(idle|mixed|allocated)'; }
wait_for "$WAIT" "node $NODE to become idle" node_ready
say "SLURM is up: node $NODE, $CPUS CPUs, ${REAL_MB} MB, gpu:1 (fake), partition debug"
echo "export SLURM_CONF=$SLURM_CONF"
