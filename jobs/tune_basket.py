"""Job entrypoint of the tune_basket stage: the raydemand command of raydemand.jobs.STAGES["tune_basket"], its flags
from jobs/configs/tune_basket.yaml (add --check to validate config and inputs only):

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python jobs/tune_basket.py --config jobs/configs/tune_basket.yaml
"""

import sys
from pathlib import Path

# `ray job submit --working-dir .` runs this file from a copy of the repo where raydemand may not be
# installed; the package then comes from the copy itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raydemand.jobs import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(Path(__file__).stem))
