"""Scripts that run the real CLI in a child process and pause it at a known step.

``python -c PAUSE_RETRAIN_AFTER_STEPS N ARGS...`` runs ``robustnas ARGS...``; after the
N-th retraining step it prints ``PAUSED`` on stdout and sleeps, so that a test can SIGKILL
it from outside at that point (no hook in robustnas itself).

``python -c PAUSE_SEARCH_AT_STEP E:S ARGS...`` runs ``robustnas ARGS...``; when search step
S (0-based, within the epoch) of epoch E (0-based) has finished, it prints ``PAUSED`` on
stdout and waits for a line on stdin before it goes on. While it waits a test can SIGKILL
it (the step's work is lost, as in a crash) or send SIGINT/SIGTERM and then write a line,
so that the signal lands during that very step, whatever the machine's speed. It patches
the searcher's step method in the child only: robustnas has no test hook.
"""

PAUSE_RETRAIN_AFTER_STEPS = """
import sys, time
from robustnas.cli import main
from robustnas.train.trainer import Trainer
original, done = Trainer._train_step, [0]
def step(self, x, y):
    original(self, x, y)
    done[0] += 1
    if done[0] == int(sys.argv[1]):
        print("PAUSED", flush=True)
        time.sleep(600)
Trainer._train_step = step
sys.exit(main(sys.argv[2:]))
"""

PAUSE_SEARCH_AT_STEP = """
import sys
from robustnas.cli import main
from robustnas.search.searcher import Searcher
epoch, at = (int(v) for v in sys.argv[1].split(":"))
original = Searcher._train_step
def step(self, *batches):
    original(self, *batches)
    if (self.epoch, self.step) == (epoch, at):  # self.step counts this step only afterwards
        print("PAUSED", flush=True)
        sys.stdin.readline()
Searcher._train_step = step
sys.exit(main(sys.argv[2:]))
"""


def start_paused_search(at: str, args: list[str], cwd, stderr_path, timeout: float = 300):
    """``robustnas search ARGS`` in a child that pauses after epoch:step ``at`` (see
    PAUSE_SEARCH_AT_STEP); returns the process once it has printed ``PAUSED`` (stderr goes to
    ``stderr_path``, so a chatty run can never block on a full pipe)."""
    import os
    import subprocess
    import sys
    import threading
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", PAUSE_SEARCH_AT_STEP, at, "search",
                                 *args], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    watchdog = threading.Timer(timeout, proc.kill)  # a run that never pauses cannot hang
    watchdog.start()
    try:
        for line in proc.stdout:  # a line the CLI printed before the pause is skipped
            if line.strip() == "PAUSED":
                return proc
    finally:
        watchdog.cancel()
    proc.wait(timeout=60)
    raise AssertionError(f"the search ended (exit {proc.returncode}) before step {at}: "
                         f"{Path(stderr_path).read_text()[-2000:]}")


def resume_paused(proc) -> None:
    """Let a paused child go on (after a signal was sent to it)."""
    proc.stdin.write("\n")
    proc.stdin.flush()
