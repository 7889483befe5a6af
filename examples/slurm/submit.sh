#!/bin/bash
# Plan a conversion and submit it to Slurm: one array task per part, then the merge.
#
#   examples/slurm/submit.sh --msms /opt/msms/bin/msms --output-root /shared/shards/c1 \
#       --parts 16 [--max-running M] --input-hdf5 /shared/GeMS_C1_DreaMS.*.hdf5 \
#       [-- --mode production --splits train=0.98,val=0.01,test=0.01 ...]
#
# 1. msms plan (here, on the login node) writes OUTPUT_ROOT/_plan.json; the flags after -- are
#    build-shards processing flags, recorded in the plan so every part uses the same settings;
# 2. sbatch --parsable --array=0-(N-1)[%M] convert.sbatch: one task per part, writing
#    OUTPUT_ROOT/parts/K/ (--max-running M caps how many run at once, e.g. to spare the
#    shared file system);
# 3. sbatch --parsable --dependency=afterok:<array job> merge.sbatch: msms merge OUTPUT_ROOT.
#
# Prints both job ids. Slurm logs go to OUTPUT_ROOT/_slurm/. Extra sbatch options: the
# environment variables PART_SBATCH_ARGS and MERGE_SBATCH_ARGS (split on spaces), or Slurm's
# own SBATCH_* variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...). OUTPUT_ROOT, the inputs
# and the msms binary must be visible under the same paths on every node. Names in
# OUTPUT_ROOT that are not shards start with _ so that dataset readers skip them.
set -euo pipefail

usage() {  # usage EXIT_CODE
    sed -n '2,20s/^# \{0,1\}//p' "$0" >&2
    exit "$1"
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
msms="" root="" parts="" max_running=""
inputs=() extra=()
while (($#)); do
    case "$1" in
        --msms) msms="$2"; shift 2 ;;
        --output-root) root="$2"; shift 2 ;;
        --parts) parts="$2"; shift 2 ;;
        --max-running) max_running="$2"; shift 2 ;;
        --input-hdf5)
            shift
            while (($#)) && [[ "$1" != --* ]]; do inputs+=("$1"); shift; done
            ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage 0 ;;
        *) echo "submit.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ -n "$msms" && -n "$root" && -n "$parts" && ${#inputs[@]} -gt 0 ]] || usage 2
[[ "$parts" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --parts wants a positive number" >&2; exit 2; }

abspath() { [[ "$1" = /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }
msms="$(abspath "$msms")"
root="$(abspath "$root")"
for i in "${!inputs[@]}"; do inputs[i]="$(abspath "${inputs[i]}")"; done

mkdir -p "$root/_slurm"
plan="$root/_plan.json"
if [[ -e "$plan" ]]; then
    # Submitted before: the same plan again continues (finished parts exit at once,
    # interrupted ones resume); another plan for this root is refused.
    new="$root/_slurm/plan.$$.json"
    "$msms" plan --input-hdf5 "${inputs[@]}" --parts "$parts" --output "$new" ${extra[@]+"${extra[@]}"} >/dev/null
    if ! cmp -s "$new" "$plan"; then
        rm -f "$new"
        echo "submit.sh: $plan holds another plan (other inputs, settings or --parts): use a new --output-root" >&2
        exit 2
    fi
    rm -f "$new"
    echo "submit.sh: $plan already holds this plan: submitting every part again (finished parts exit at once)"
else
    "$msms" plan --input-hdf5 "${inputs[@]}" --parts "$parts" --output "$plan" ${extra[@]+"${extra[@]}"}
fi

export MSMS="$msms" PLAN="$plan" OUTPUT_ROOT="$root"
array="0-$((parts - 1))${max_running:+%$max_running}"
read -ra part_args <<<"${PART_SBATCH_ARGS:-}"
read -ra merge_args <<<"${MERGE_SBATCH_ARGS:-}"

parts_job="$(sbatch --parsable --export=ALL --array="$array" \
    --output="$root/_slurm/part-%A_%a.log" ${part_args[@]+"${part_args[@]}"} "$here/convert.sbatch")"
parts_job="${parts_job%%;*}"  # --parsable prints "jobid[;cluster]"
merge_job="$(sbatch --parsable --export=ALL --dependency="afterok:$parts_job" \
    --output="$root/_slurm/merge-%j.log" ${merge_args[@]+"${merge_args[@]}"} "$here/merge.sbatch")"
merge_job="${merge_job%%;*}"

echo "submit.sh: parts: job array $parts_job ($parts tasks, --array=$array); merge: job $merge_job (after every part succeeded)"
echo "submit.sh: watch with: squeue -j $parts_job,$merge_job; logs in $root/_slurm/"
