#!/usr/bin/env bash
# Runs one jaxaudit job on every host of a Cloud TPU VM pod slice.
#
#   launch/tpu_pod.sh my-tpu-v4-32 us-central2-b -- \
#       --config=configs/imagenet_attack.py --workdir=gs://bucket/runs/in-attack \
#       --config.data.tfds_name=imagenet2012 --config.data.tfds_data_dir=gs://bucket/tfds
#
# Copies this checkout to every worker, sets up a venv with jax[tpu] and gcsfs (gs://
# workdirs) there (once), and starts `python -m jaxaudit.main ARGS --multihost` on
# all workers at once:
# jax.distributed.initialize() reads the pod's topology from the TPU metadata.
set -euo pipefail
if [[ $# -lt 3 || "$3" != "--" ]]; then
  echo "usage: $0 TPU_NAME ZONE -- JAXAUDIT_ARGS..." >&2
  exit 2
fi
TPU="$1"; ZONE="$2"; shift 3
ARGS=$(printf '%q ' "$@")
REPO=$(cd "$(dirname "$0")/.." && pwd)
tar -C "$REPO" --exclude=.venv --exclude=.git -czf /tmp/jaxaudit-src.tgz .
gcloud compute tpus tpu-vm scp /tmp/jaxaudit-src.tgz "$TPU":/tmp/ \
  --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  set -e; mkdir -p ~/jaxaudit && tar -C ~/jaxaudit -xzf /tmp/jaxaudit-src.tgz
  cd ~/jaxaudit
  if [ ! -d .venv ]; then python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]' gcsfs; fi
  .venv/bin/python -m jaxaudit.main $ARGS --multihost"
