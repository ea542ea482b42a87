#!/bin/bash
# kiln workers as a Slurm job array: 16 tasks, each a `kiln worker` training as many trials at
# once as it has CPUs, all sharing one sweep through PostgreSQL.
#
#   kiln run --storage postgres://kiln@dbhost:5432/kiln experiments/digits.toml --workers 0 --trials 400
#   sbatch deploy/slurm-array.sh
#
# Relative data paths in the experiment resolve against the folder it was created in when the
# node sees it (a shared file system), otherwise against the folder the worker starts in.
# A task that is preempted or hits its time limit loses its trials to the other tasks when its
# lease expires; they continue them from the checkpoints kept in the database. Requeue freely.
#SBATCH --job-name=kiln-digits
#SBATCH --array=0-15
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=kiln-%A_%a.log

set -euo pipefail
export PGPASSWORD="$(cat "$HOME/.kiln-pgpassword")"   # never in the experiment file
exec kiln worker \
  --storage postgres://kiln@dbhost:5432/kiln \
  --sweep digits-mlp \
  --workers "${SLURM_CPUS_PER_TASK:-1}" \
  --quiet
