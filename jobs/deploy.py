"""Job entrypoint for the deploy stage (flags of the command in jobs/configs/deploy.yaml; see raydemand/jobs.py):

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python jobs/deploy.py --config jobs/configs/deploy.yaml
"""

import sys
from pathlib import Path

# `ray job submit --working-dir .` runs this file from a copy of the repo where raydemand may not be
# installed; the package then comes from the copy itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raydemand.jobs import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main("deploy"))
