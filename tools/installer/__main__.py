import sys

from tools.installer.cli import main

sys.exit(main())
