"""A script that runs the real CLI in a child process and pauses it at a known step.

``python -c PAUSE_RETRAIN_AFTER_STEPS N ARGS...`` runs ``robustnas ARGS...``; after the
N-th retraining step it prints ``PAUSED`` on stdout and sleeps, so that a test can SIGKILL
it from outside at that point (no hook in robustnas itself).
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
