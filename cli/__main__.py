import sys

from plusls.cli import main

sys.exit(main())
