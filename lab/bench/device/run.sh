#!/bin/sh
# Runs the scaling bench with what prepare.sh put under .device/, as root,
# and writes the table (its header names the date, kernel and CPU), its
# JSON and the progress log under $OUT (or ./scaling-out). It needs
# nothing of the machine but /bin/sh: the bench skips the CPU counts the
# machine lacks. Usage: lab/bench/device/run.sh [extra bench flags]
set -eu
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
root=$(cd "$here/../../.." && pwd)
d=$root/.device
out=${OUT:-$root/scaling-out}
[ -d "$out" ] || mkdir -p "$out"
PATH=$d/bin:$PATH
export PATH
exec "$d/bin/natreveal-lab" bench -cpus 1,2,4,8,16 -modes queue,go-nfqueue,tcp-option,ip-id \
	-json "$out/scaling.json" "$@" >"$out/scaling.txt" 2>"$out/progress.txt"
