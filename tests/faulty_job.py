"""Runs `jaxaudit.main`, killed the way a crash would kill it, after N shards.

  python tests/faulty_job.py N --config=configs/default.py --workdir=...

The fault is injected here, not in the product: `resume.ShardStore.save` is
wrapped so that right after the N-th committed shard the process exits with
`KILLED` (`os._exit`: no cleanup, no flush), as if it had been killed.
"""

import os
import sys

from absl import app

from jaxaudit import main
from jaxaudit import resume

KILLED = 75  # The exit status of the injected kill.


def kill_after_commits(commits: int) -> None:
  """Makes the process exit with `KILLED` once `commits` shards are committed.

  Args:
    commits: committed shards (over every computation of the job) to allow.
  """
  save = resume.ShardStore.save
  done = 0

  def save_then_die(self, shard, ids, arrays):
    nonlocal done
    paths = save(self, shard, ids, arrays)
    done += 1
    if done >= commits:
      os._exit(KILLED)
    return paths

  resume.ShardStore.save = save_then_die


if __name__ == "__main__":
  kill_after_commits(int(sys.argv.pop(1)))
  app.run(main.main)
