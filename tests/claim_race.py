"""One of several processes taking every waiting trial of a study at once (the storage's
double hand-out race). ``python tests/claim_race.py STORAGE STUDY OUT GO``: once the file
GO exists (so that all processes start together), appends the number of every trial this
process won to OUT, one per line."""

from __future__ import annotations

import os
import sys
import time

import optuna


def main() -> int:
    from robustnas.studies.storage import claim, open_storage

    url, name, out, go = sys.argv[1:5]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    while not os.path.exists(go):
        time.sleep(0.01)
    won = []
    while True:
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if not waiting:
            break
        for t in waiting:
            if claim(study._storage, t._trial_id):
                won.append(t.number)
    with open(out, "a") as f:
        f.write("".join(f"{n}\n" for n in won))
    return 0


if __name__ == "__main__":
    sys.exit(main())
