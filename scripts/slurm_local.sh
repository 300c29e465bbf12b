#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, with accounting (what submitit reads job states from):
# munged, mariadbd, slurmdbd, slurmctld and slurmd started as plain daemons (no systemd), stopped by
# their pid files.  Installs Debian's packages when missing (as root).  Idempotent.
#   scripts/slurm_local.sh start   # exit 0 once the node is idle and sacct answers
#   scripts/slurm_local.sh stop
#   scripts/slurm_local.sh status
set -euo pipefail
STATE=${PANBENCH_SLURM_STATE:-/var/lib/panbench-slurm}
RUN=$STATE/run
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARK="# written by panbench scripts/slurm_local.sh"
CLUSTER=panbench
PKGS=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)

die() { echo "slurm_local: $*" >&2; exit 1; }

install() {
  command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
    && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "Slurm is not installed and this is not root: apt-get install ${PKGS[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}") \
    >>/tmp/panbench-apt.log 2>&1 || die "apt-get install ${PKGS[*]} failed (log: /tmp/panbench-apt.log)"
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local n=$1 what=$2
  shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what did not come up within ${n}s (logs: $STATE/log)"
}

write_confs() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: not touching a real cluster's configuration"
  fi
  local node
  node=$(slurmd -C | head -1 | sed 's/ UpTime=.*//')
  mkdir -p /etc/slurm "$STATE/log" "$STATE/ctld" "$STATE/d" "$RUN"
  cat >"$CONF" <<CONFEOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
KillWait=10
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONFEOF
  cat >"$DBD_CONF" <<CONFEOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=panbench
StorageLoc=slurm_acct_db
CONFEOF
  chown root:root "$DBD_CONF"
  chmod 600 "$DBD_CONF"
}

start_munge() {
  running munged && return 0
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- munged --pid-file=/run/munge/munged.pid 2>>"$STATE/log/munged.log" \
    || die "munged did not start (log: $STATE/log/munged.log)"
  wait_for 20 munged test -f /run/munge/munged.pid
  cp /run/munge/munged.pid "$RUN/munged.pid"
}

start_mariadb() {
  running mariadbd && return 0
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$STATE/log/mariadb.log" 2>&1
  (mariadbd --user=mysql --datadir=/var/lib/mysql --pid-file=/run/mysqld/mariadbd.pid \
    --bind-address=127.0.0.1 >>"$STATE/log/mariadb.log" 2>&1 &)
  wait_for 60 mariadbd mariadb -e "select 1"
  cp /run/mysqld/mariadbd.pid "$RUN/mariadbd.pid"
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' \
    IDENTIFIED BY 'panbench'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start() {
  install
  mkdir -p "$STATE/log" "$RUN"
  write_confs
  start_munge
  start_mariadb
  running slurmdbd || slurmdbd || die "slurmdbd did not start (log: $STATE/log/slurmdbd.log)"
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  running slurmctld || slurmctld || die "slurmctld did not start (log: $STATE/log/slurmctld.log)"
  wait_for 60 slurmctld scontrol ping
  running slurmd || slurmd || die "slurmd did not start (log: $STATE/log/slurmd.log)"
  wait_for 60 "the node" sh -c "sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)'"
  wait_for 60 sacct sacct -n -X -S now-1hour
  echo "slurm_local: one-node cluster up (sinfo: $(sinfo -h -o '%P %D %T %c'))"
}

stop() {
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    if running "$d"; then
      local pid
      pid=$(cat "$RUN/$d.pid")
      kill "$pid"
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$RUN/$d.pid"
  done
  echo "slurm_local: stopped"
}

status() {
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$d"; then echo "$d running (pid $(cat "$RUN/$d.pid"))"; else echo "$d stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
