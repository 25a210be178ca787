"""The test PostgreSQL cluster stops even when its folder was removed from outside while it ran.

Seen once in a full run on a shared machine: the session cluster's folder under /tmp was gone at
teardown, and `pg_ctl` (run with that folder as its working directory) failed with FileNotFoundError,
leaving the server running. It is now stopped by the pid it wrote at start.
"""
import shutil
import time

from jupyter_securellm.testing.postgres import PostgresCluster


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_cluster_whose_folder_was_removed_is_still_stopped():
    c = PostgresCluster().start()
    pid = c._postmaster
    assert pid and _alive(pid)
    shutil.rmtree(c.dir)
    c.stop()  # no exception
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"postmaster {pid} still runs"
