#!/usr/bin/env bash
# One sweep experiment on a cluster node, run from inside a clone of the project: check
# out the commit, set up (or use a shared venv), run grid entry INDEX and push it.
# The SLURM array script and the Kubernetes Indexed Job both call it (docs/scaling.md).
#   INDEX         the grid entry (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX)
#   COMMIT        what to sweep (default: what the clone has checked out)
#   GRID          a grid file, one `MODEL [KEY=VALUE ...]` per line (default: the zoo)
#   PROFILE       full (each recipe) or small (a cheap trial); default full
#   FMNIST_VENV   a virtual environment to use instead of ./run.sh setup (a shared one)
#   DVC_REMOTE_URL  the DVC remote to push outputs to (default: the repository's own)
set -euo pipefail
: "${INDEX:?set INDEX to the grid entry to run}"
if [ -n "${COMMIT:-}" ]; then  # a branch (its tip at origin) or a commit id
    git fetch -q origin
    git checkout -q --detach "$(git rev-parse -q --verify "origin/$COMMIT" || echo "$COMMIT")"
fi
git config user.email >/dev/null || git config user.email "sweep@$(hostname)"
git config user.name >/dev/null || git config user.name "sweep worker"
if [ -n "${FMNIST_VENV:-}" ]; then
    # shellcheck disable=SC1091
    source "$FMNIST_VENV/bin/activate"
else
    ./run.sh setup
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
if [ -n "${DVC_REMOTE_URL:-}" ]; then dvc remote add --local --default --force sweep "$DVC_REMOTE_URL"; fi
grid=()
if [ -n "${GRID:-}" ]; then grid=(--grid "$GRID"); fi
exec python -m fmnist.review.sweep_unit --index "$INDEX" --profile "${PROFILE:-full}" "${grid[@]}"
