#!/usr/bin/env bash
# Bring up a one-node SLURM (Debian 12's slurm-wlm 22.05 + munge) on this machine, for the tests and for
# trying `snakemake --profile slurm` on a laptop. Accounting (slurmdbd + MariaDB) is on by default so that
# `sacct` works and the project's profile runs unchanged; SLURM_ACCOUNTING=0 skips it (then pass
# `--slurm-status-command squeue`). No systemd and no cgroups: the daemons are started directly and
# .ci/slurm-down.sh stops them by their PID files. Safe to rerun: what is installed or running is kept.
#   SLURM_CI_DIR      state, logs and PID files       (default /tmp/slurm-ci)
#   SLURM_ACCOUNTING  1 = slurmdbd + MariaDB          (default 1)
#   SLURM_MEM_MB      the node's RealMemory           (default: 3/4 of this machine's memory)
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
ACCT=${SLURM_ACCOUNTING:-1}
HOST=$(hostname -s)
MEM=${SLURM_MEM_MB:-$(awk '/MemTotal/ {print int($2 / 1024 * 3 / 4)}' /proc/meminfo)}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

alive() { local pid; pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
wait_for() { for _ in $(seq 150); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "timed out: $1" >&2; return 1; }

pkgs=(slurmctld slurmd slurm-client munge)
[ "$ACCT" = 1 ] && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[slurm] installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$SUDO mkdir -p "$D"/{state/ctld,state/d,log,run}

# munge: the Debian postinst makes a key; make one if it did not
$SUDO test -s /etc/munge/munge.key || $SUDO mungekey --create --force
$SUDO chown munge:munge /etc/munge/munge.key && $SUDO chmod 0400 /etc/munge/munge.key
$SUDO mkdir -p /run/munge && $SUDO chown munge:munge /run/munge
alive /run/munge/munged.pid || $SUDO runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

if [ "$ACCT" = 1 ]; then
  ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT_CONF="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
$SUDO tee /etc/slurm/slurm.conf >/dev/null <<CONF
# written by .ci/slurm-up.sh (slurm-down.sh moves it aside)
ClusterName=ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state/ctld
SlurmdSpoolDir=$D/state/d
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
$ACCT_CONF
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to squeue for 5 min (the snakemake plugin's squeue mode needs >= 3 x 40 s)
MinJobAge=300
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

if [ "$ACCT" = 1 ]; then
  sock="$D/mysqlrun/mysqld.sock"
  if ! alive "$D/mysqlrun/mysqld.pid"; then
    $SUDO mkdir -p "$D/mysql" "$D/mysqlrun" && $SUDO chown mysql:mysql "$D/mysql" "$D/mysqlrun"
    [ -d "$D/mysql/mysql" ] || $SUDO mariadb-install-db --user=mysql --datadir="$D/mysql" --skip-test-db \
        >"$D/log/mariadb-install.log" 2>&1
    $SUDO setsid mariadbd --user=mysql --datadir="$D/mysql" --socket="$sock" --pid-file="$D/mysqlrun/mysqld.pid" \
        --bind-address=127.0.0.1 --port=3306 --log-error="$D/mysqlrun/mysqld.err" </dev/null >/dev/null 2>&1 &
    wait_for "$SUDO mariadb-admin --socket=$sock ping"
  fi
  $SUDO mariadb --socket="$sock" -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  $SUDO install -m 600 /dev/stdin /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
CONF
  alive "$D/run/slurmdbd.pid" || $SUDO /usr/sbin/slurmdbd
  wait_for "sacctmgr -n list cluster"
fi

alive "$D/run/slurmctld.pid" || $SUDO /usr/sbin/slurmctld
alive "$D/run/slurmd.pid" || $SUDO /usr/sbin/slurmd
wait_for '[ "$(sinfo -h -o %T)" = idle ]'
srun -t 1 hostname >/dev/null   # a job really runs
echo "[slurm] up: node $HOST, $(nproc) CPUs, ${MEM} MB, accounting=$ACCT, state in $D"
