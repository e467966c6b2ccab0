"""`python -m kiln ...` runs the kiln command-line tool bundled with the package (kiln/bin/kiln)."""
import os
import sys


def main() -> None:
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "kiln")
    if not os.access(exe, os.X_OK):
        sys.exit(f"kiln: the bundled command-line tool is missing ({exe})")
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
