"""Job entrypoint for the prepare stage (see raydemand/data/prepare.py):

    ray job submit --working-dir . -- python jobs/prepare.py --config jobs/configs/prepare.yaml
"""

import sys
from pathlib import Path

# `ray job submit --working-dir .` runs this file from a copy of the repo where raydemand may not be
# installed; the package then comes from the copy itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raydemand.data.prepare import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
