"""``python -m simtools`` runs the command line."""

from simtools_cli.main import main

if __name__ == "__main__":
    main()
