#!/usr/bin/env bash
# Stop the daemons that .ci/slurm-up.sh started, by their PID files (never by name).
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
stop() {
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  $SUDO kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
stop "$D/run/slurmd.pid"
stop "$D/run/slurmctld.pid"
stop "$D/run/slurmdbd.pid"
stop "$D/mysqlrun/mysqld.pid"
stop /run/munge/munged.pid
# With the client's config left in place and no controller, every `sacct`/`scontrol` waits for a timeout,
# and snakemake-executor-plugin-slurm calls them on import: each `snakemake` start would take ~9 s longer.
if grep -qs "written by .ci/slurm-up.sh" /etc/slurm/slurm.conf; then
  $SUDO mkdir -p "$D" && $SUDO mv /etc/slurm/slurm.conf "$D/slurm.conf"
fi
echo "[slurm] down"
