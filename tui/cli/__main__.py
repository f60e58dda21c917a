"""``python -m tui.cli``: the ``warden`` command without the installed script."""

from tui.cli import main

if __name__ == "__main__":
    main()
