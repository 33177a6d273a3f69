#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests and for trying profiles/slurm*:
# munged, MariaDB + slurmdbd (so sacct works, as on real sites), slurmctld and slurmd.
# Adapted from shared/hpc/slurm-up.sh (tested recipe; see its README for the gotchas), with one
# difference: everything lives in a private state directory (configs, pid files, logs, the
# database), and `down` stops exactly the daemons that `up` started, by the PIDs it recorded.
# Only /etc/slurm/slurm.conf is touched: a link to the state dir's config, made only where no
# other config exists and removed by `down`, because the executor plugin's job step strips
# SLURM_CONF from the environment before its nested `srun`, which then reads the default path.
# Needs root and Debian's slurm packages (installed on first use with apt-get).
#
#   hpc/local-cluster.sh up       start (idempotent: a running cluster of this state dir is kept)
#   hpc/local-cluster.sh down     cancel its jobs, stop its daemons (pid files in the state dir only)
#   hpc/local-cluster.sh status   say whether it answers
#   eval "$(hpc/local-cluster.sh env)"   point sbatch/squeue/sacct at it (SLURM_CONF)
#
# Environment: ATLAS_SLURM_STATE (default /tmp/scaling-atlas-slurm), ATLAS_SLURM_CGROUPS
# (auto|yes|no), ATLAS_SLURM_DBPORT (MariaDB, default 3316), ATLAS_SLURM_GPUS (default 2).
# Partition `debug`, account `ci`.
#
# Fake GPUs: the node declares ATLAS_SLURM_GPUS generic resources of type gpu, backed by
# character devices in the state dir (gres.conf, AutoDetect=off). SLURM schedules them as it
# schedules real ones: `--gpus=1` and `--gres=gpu:1` are accepted, a job holds its GPU until it
# ends, and the job's environment gets CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS for its own
# device. No CUDA is behind them: code that looks for a GPU finds none and runs on the CPU.
set -euo pipefail
STATE="${ATLAS_SLURM_STATE:-/tmp/scaling-atlas-slurm}"
CGROUPS="${ATLAS_SLURM_CGROUPS:-auto}"
DBPORT="${ATLAS_SLURM_DBPORT:-3316}"
GPUS="${ATLAS_SLURM_GPUS:-2}"
CLUSTER=ci ACCOUNT=ci PARTITION=debug DBPASS=slurmci
CONF="$STATE/slurm.conf"
ETC_CONF=/etc/slurm/slurm.conf
PIDFILES=("$STATE/slurmd.pid" "$STATE/slurm/slurmctld.pid" "$STATE/slurm/slurmdbd.pid" "$STATE/mysql/mysqld.pid"
          "$STATE/munge/munged.pid")

log() { echo "[local-cluster $(date +%T)] $*"; }
wait_for() { # wait_for <seconds> <cmd...>
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= end )); then echo "[local-cluster] timeout waiting for: $*" >&2; return 1; fi
    sleep 0.5
  done
}
answers() { [ -s "$STATE/slurm/slurmctld.pid" ] && SLURM_CONF="$CONF" scontrol ping >/dev/null 2>&1; }

install_packages() {
  local pkgs="munge slurmctld slurmd slurm-client slurmdbd mariadb-server" missing
  missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    log "apt-get install $(echo $missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
  fi
}

start_munge() {
  # Slurm's clients (sacctmgr among them) use munged's default socket whatever AuthInfo says, so
  # the default socket is used: a munged already serving it is reused (and never stopped by
  # `down`); otherwise one is started with this state dir's key and pid file.
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then log "reusing the running munged"; return; fi
  install -d -o munge -g munge -m 755 "$STATE/munge" /run/munge
  [ -s "$STATE/munge/munge.key" ] || mungekey --create --keyfile="$STATE/munge/munge.key"
  chown munge:munge "$STATE/munge/munge.key"; chmod 400 "$STATE/munge/munge.key"
  runuser -u munge -- /usr/sbin/munged --key-file="$STATE/munge/munge.key" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
  wait_for 10 bash -c "munge -n | unmunge"
}

start_database() {
  install -d -o mysql -g mysql "$STATE/mysql"
  [ -d "$STATE/mysql/data/mysql" ] || mariadb-install-db --user=mysql --datadir="$STATE/mysql/data" >/dev/null
  setsid /usr/sbin/mariadbd --user=mysql --datadir="$STATE/mysql/data" --bind-address=127.0.0.1 \
    --port="$DBPORT" --socket="$STATE/mysql/mysqld.sock" --pid-file="$STATE/mysql/mysqld.pid" \
    --innodb-lock-wait-timeout=900 >"$STATE/mysql/mariadb.log" 2>&1 </dev/null &
  wait_for 60 mysqladmin --socket="$STATE/mysql/mysqld.sock" ping
  mysql --socket="$STATE/mysql/mysqld.sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

make_fake_gpus() {
  install -d "$STATE/gpus"
  for ((i = 0; i < GPUS; i++)); do mknod -m 600 "$STATE/gpus/nvidia$i" c 195 "$i" || return 1; done
}

write_configs() {
  local node mem proctrack task acct_gather gres
  node=$(slurmd -C | head -1)  # the machine's real CPUs, sockets and memory
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  node=$(sed -e 's/^NodeName=[^ ]*/NodeName=localhost/' -e "s/RealMemory=[0-9]*/RealMemory=$((mem - 1024))/" <<<"$node")
  gres=""
  rm -rf "$STATE/gpus" "$STATE/gres.conf"
  # fake GPUs (see the top of this file): character devices with the NVIDIA driver's major
  # number (195), as SLURM accepts only devices; without the driver, opening one fails (ENXIO)
  if (( GPUS > 0 )) && ! make_fake_gpus; then
    log "cannot make device nodes in $STATE/gpus (no CAP_MKNOD?): the node gets no GPUs"
    GPUS=0
  fi
  if (( GPUS > 0 )); then
    printf 'AutoDetect=off\nName=gpu File=%s/gpus/nvidia[0-%d]\n' "$STATE" $((GPUS - 1)) >"$STATE/gres.conf"
    chmod 644 "$STATE/gres.conf"
    node="$node Gres=gpu:$GPUS" gres="GresTypes=gpu"
  fi
  if [ "$CGROUPS" = auto ]; then
    if [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpuset ] && [ -d /sys/fs/cgroup/freezer ]; then CGROUPS=yes; else CGROUPS=no; fi
  fi
  if [ "$CGROUPS" = yes ]; then
    proctrack=proctrack/cgroup task=task/cgroup,task/affinity acct_gather=""
    printf 'CgroupPlugin=cgroup/v1\nConstrainCores=yes\nConstrainRAMSpace=yes\nConstrainSwapSpace=no\n' >"$STATE/cgroup.conf"
  else
    # no cgroups: memory limits are enforced by polling instead (jobs over --mem are killed)
    proctrack=proctrack/linuxproc task=task/affinity acct_gather="JobAcctGatherParams=OverMemoryKill"
    rm -f "$STATE/cgroup.conf"
  fi
  cat >"$CONF" <<CONF
# one-node SLURM cluster on localhost (hpc/local-cluster.sh); state in $STATE
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=$proctrack
TaskPlugin=$task
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=2
# keep --comment in the accounting database: the executor plugin writes the rule name there
AccountingStoreFlags=job_comment
$acct_gather
JobCompType=jobcomp/none
$gres
AccountingStorageTRES=gres/gpu
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
# reject at submission (instead of pending forever) what the partition cannot give
EnforcePartLimits=ALL
MinJobAge=600
SlurmctldPidFile=$STATE/slurm/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/slurmd
StateSaveLocation=$STATE/slurm/state
SlurmctldLogFile=$STATE/slurm/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  cat >"$STATE/slurmdbd.conf" <<DBD
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$STATE/slurm/slurmdbd.pid
LogFile=$STATE/slurm/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
DBD
  chown slurm:slurm "$STATE/slurmdbd.conf"; chmod 600 "$STATE/slurmdbd.conf"
  chmod 644 "$CONF"
  # slurmctld and slurmdbd run as the slurm user: their pid files, state and logs in $STATE/slurm
  install -d -o slurm -g slurm "$STATE/slurm" "$STATE/slurm/state"
  install -d "$STATE/slurmd"
  log "slurm.conf: $node; $proctrack; $task; $GPUS fake GPUs"
}

link_default_config() {
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then return; fi
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    echo "[local-cluster] $ETC_CONF exists and is not ours: another SLURM setup lives here;" \
         "not touching it (stop that cluster or use a clean machine)" >&2
    return 1
  fi
  install -d /etc/slurm
  ln -s "$CONF" "$ETC_CONF"
}

up() {
  if answers; then log "already up ($CONF)"; sinfo_line; return; fi
  down >/dev/null 2>&1 || true  # leftovers of this state dir only
  install_packages
  link_default_config
  install -d -m 755 "$STATE"
  start_munge
  write_configs
  start_database
  SLURM_CONF="$CONF" /usr/sbin/slurmdbd
  wait_for 60 env SLURM_CONF="$CONF" sacctmgr -n list cluster
  export SLURM_CONF="$CONF"
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  sacctmgr -n list account format=account | grep -qw "$ACCOUNT" || sacctmgr -i add account "$ACCOUNT" Description=ci Organization=ci >/dev/null
  for user in root ${SUDO_USER:-}; do
    sacctmgr -n list assoc user="$user" account="$ACCOUNT" format=user | grep -qw "$user" || \
      sacctmgr -i add user "$user" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
  done
  /usr/sbin/slurmctld -f "$CONF"
  wait_for 30 scontrol ping
  /usr/sbin/slurmd -f "$CONF" -N localhost  # node name localhost whatever the hostname
  wait_for 60 bash -c "sinfo -h -n localhost -o %T | grep -qE '^(idle|mixed|allocated)'"
  log "up: $(sinfo_line)"
}

sinfo_line() { SLURM_CONF="$CONF" sinfo -h -o "partition %P, %D node, %c CPUs, %m MB, %G, %T"; }

down() {
  if answers; then  # slurmstepd is not a child of slurmd: cancel jobs before stopping daemons
    SLURM_CONF="$CONF" scancel --full --partition="$PARTITION" 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(SLURM_CONF="$CONF" squeue -h -t R,CG,PD 2>/dev/null)" ] && break; sleep 1; done
  fi
  for pidfile in "${PIDFILES[@]}"; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { log "$pidfile ($pid) still alive: SIGKILL"; kill -9 "$pid"; }
      log "stopped $(basename "$pidfile" .pid) ($pid)"
    fi
    rm -f "$pidfile"
  done
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then rm -f "$ETC_CONF"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if answers; then echo "up: $(sinfo_line)"; else echo "down"; exit 1; fi ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
