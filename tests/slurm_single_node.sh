#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (root, Debian's slurmctld/slurmd/munge packages;
# .ci/run installs them). Idempotent: exits 0 at once when `sinfo` already answers. Used by
# tests/test_slurm_real.py, which skips with this script's message when it fails.
set -euo pipefail
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
  { echo "slurmctld, slurmd or munged is not installed (apt-get install slurmctld slurmd slurm-client munge)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "starting Slurm daemons needs root"; exit 1; }
if timeout 5 sinfo -h >/dev/null 2>&1; then exit 0; fi
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=bench
SlurmctldHost=$host
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
CONF
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
sleep 1
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 20); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then exit 0; fi
  sleep 0.5
done
echo "the Slurm daemons started but the node is not idle: $(sinfo -h 2>&1 | head -1); see /var/log/slurm/"
exit 1
