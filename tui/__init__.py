"""warden's Textual app and command line. Calls ``store`` for all real work."""
